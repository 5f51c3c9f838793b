//! Deployed operators in S3, the way the Flink application's jar was: under a prefix, each
//! component is stored once under its digest (`PREFIX/<sha256>.wasm`), and the manifest
//! `PREFIX/current.json` names the one to run, with its settings and the deployments before.
//!
//! The manifest is only ever replaced with a conditional write on the ETag it had when read
//! (or "must not exist yet" for the first deploy), so two deploys racing cannot silently
//! overwrite each other: the loser gets [`StoreError::Conflict`]. A component read back is
//! checked against the manifest's digest before anything uses it.

use std::collections::BTreeMap;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use serde::{Deserialize, Serialize};
use weir_kinesis::aws::{self, cause, describe, one_line};

use crate::artifact::{Artifact, Digest};

/// The manifest's name under the prefix.
pub const MANIFEST: &str = "current.json";
/// Deployments kept in a manifest's history.
pub const HISTORY: usize = 50;

/// One deployment of a component.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// The component's sha256 (hex in the manifest).
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// The contract it was built for (`weir:operator@0.1.0`).
    pub contract: String,
    /// The operator's name, as it describes itself.
    pub name: Option<String>,
    /// Its version.
    pub version: Option<String>,
    /// When it was deployed (RFC 3339 in the manifest).
    pub deployed_at: jiff::Timestamp,
    /// Settings passed to its `init`.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// Set when this deployment rolled back to an earlier digest: the digest rolled back from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<Digest>,
}

impl Deployment {
    /// The settings to initialise with: the stored ones, with `overrides` (the command line's)
    /// replacing any with the same key.
    pub fn settings_with(&self, overrides: &[(String, String)]) -> Vec<(String, String)> {
        let mut merged: Vec<(String, String)> = self
            .settings
            .iter()
            .filter(|(k, _)| !overrides.iter().any(|(o, _)| o == *k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        merged.extend(overrides.iter().cloned());
        merged
    }
}

/// `PREFIX/current.json`: the deployment to run, the one before, and older ones.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The deployment to run.
    #[serde(flatten)]
    pub current: Deployment,
    /// The digest deployed before this one.
    pub previous: Option<Digest>,
    /// Earlier deployments, newest first, at most [`HISTORY`].
    #[serde(default)]
    pub history: Vec<Deployment>,
}

impl Manifest {
    /// The manifest after deploying `next` over `self` (None: the first deploy).
    pub fn next(before: Option<&Manifest>, next: Deployment) -> Manifest {
        match before {
            None => Manifest { current: next, previous: None, history: Vec::new() },
            Some(before) => {
                let mut history = Vec::with_capacity(HISTORY);
                history.push(before.current.clone());
                history.extend(before.history.iter().take(HISTORY - 1).cloned());
                Manifest { previous: Some(before.current.digest), current: next, history }
            }
        }
    }
}

/// An S3 request failed, or what it returned cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The bucket does not exist.
    #[error(
        "bucket {bucket} does not exist at {endpoint}: create it, or check the name and the region (--region, AWS_REGION)"
    )]
    NoSuchBucket {
        /// The bucket.
        bucket: String,
        /// Where the request went.
        endpoint: String,
    },
    /// The object does not exist.
    #[error("{object} does not exist at {endpoint}")]
    NoSuchObject {
        /// `s3://BUCKET/KEY`.
        object: String,
        /// Where the request went.
        endpoint: String,
    },
    /// The credentials were refused or lack a permission.
    #[error(
        "access to {object} was denied at {endpoint} ({detail}): check the credentials and their permissions"
    )]
    AccessDenied {
        /// `s3://BUCKET/KEY`.
        object: String,
        /// Where the request went.
        endpoint: String,
        /// What S3 said.
        detail: String,
    },
    /// No credentials were found in the default chain.
    #[error(
        "no AWS credentials for {object}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with a role ({detail})"
    )]
    NoCredentials {
        /// `s3://BUCKET/KEY`.
        object: String,
        /// What the credential chain said.
        detail: String,
    },
    /// The endpoint could not be reached.
    #[error(
        "cannot reach S3 at {endpoint} for {object}: {detail}; check the endpoint (AWS_ENDPOINT_URL_S3) and the network"
    )]
    Unreachable {
        /// `s3://BUCKET/KEY`.
        object: String,
        /// Where the request went.
        endpoint: String,
        /// The error and its causes.
        detail: String,
    },
    /// S3 answered with another error.
    #[error("S3 refused a request for {object} at {endpoint}: {code} {message}")]
    Refused {
        /// `s3://BUCKET/KEY`.
        object: String,
        /// Where the request went.
        endpoint: String,
        /// The error code.
        code: String,
        /// S3's message.
        message: String,
    },
    /// The request or reading its reply failed in another way.
    #[error("request for {object} at {endpoint} failed: {detail}")]
    Failed {
        /// `s3://BUCKET/KEY`.
        object: String,
        /// Where the request went.
        endpoint: String,
        /// The error and its causes.
        detail: String,
    },
    /// Another deploy replaced the manifest since it was read.
    #[error(
        "{location}/{MANIFEST} was changed by another deploy since it was read (ETag {expected}); nothing was overwritten: look at `weir operators list {location}` and deploy again"
    )]
    Conflict {
        /// `s3://BUCKET/PREFIX`.
        location: String,
        /// The ETag the write expected ("none" for a first deploy).
        expected: String,
    },
    /// Nothing is deployed under the prefix.
    #[error(
        "no operator is deployed at {0} (there is no {0}/{MANIFEST}): deploy one with `weir deploy OPERATOR.wasm {0}`"
    )]
    NothingDeployed(String),
    /// The manifest is not one weir wrote.
    #[error("{location}/{MANIFEST} is not a weir manifest: {reason}")]
    BadManifest {
        /// `s3://BUCKET/PREFIX`.
        location: String,
        /// Why.
        reason: String,
    },
    /// The stored component is not the one the manifest names.
    #[error(
        "{key} has sha256 {actual}, but the manifest names {expected}: the stored component was changed or damaged; refusing to run it (deploy it again)"
    )]
    DigestMismatch {
        /// The object.
        key: String,
        /// What the manifest says.
        expected: Digest,
        /// What was read.
        actual: Digest,
    },
}

/// Operators deployed under `s3://BUCKET/PREFIX`.
#[derive(Clone, Debug)]
pub struct OperatorStore {
    client: Client,
    bucket: String,
    prefix: String,
    endpoint: String,
}

impl OperatorStore {
    /// A store for `bucket` and `prefix` (without a trailing `/`), with AWS settings from the
    /// usual places; `region` overrides the configured one.
    pub async fn connect(bucket: &str, prefix: &str, region: Option<&str>) -> Self {
        let config = aws::config(region).await;
        let endpoint = aws::endpoint_override(&config, "S3");
        // Emulators (moto, MinIO) serve buckets by path, not as host names.
        let s3_config =
            aws_sdk_s3::config::Builder::from(&config).force_path_style(endpoint.is_some()).build();
        let endpoint = endpoint.unwrap_or_else(|| aws::regional_endpoint(&config, "S3"));
        Self {
            client: Client::from_conf(s3_config),
            bucket: bucket.to_string(),
            prefix: prefix.trim_end_matches('/').to_string(),
            endpoint,
        }
    }

    /// `s3://BUCKET/PREFIX`.
    pub fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    /// `s3://BUCKET/KEY`, for messages.
    fn object(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() { name.to_string() } else { format!("{}/{name}", self.prefix) }
    }

    /// The key a component is stored under.
    pub fn component_key(&self, digest: &Digest) -> String {
        self.key(&format!("{digest}.wasm"))
    }

    /// The manifest and its ETag, or None when nothing is deployed yet.
    pub async fn manifest(&self) -> Result<Option<(Manifest, String)>, StoreError> {
        let key = self.key(MANIFEST);
        let reply = match self.client.get_object().bucket(&self.bucket).key(&key).send().await {
            Ok(reply) => reply,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(self.explain(&e, &key)),
        };
        self.read_manifest(&key, reply).await.map(Some)
    }

    /// Like [`OperatorStore::manifest`], but None when its ETag is still `etag` (a conditional
    /// GET: nothing is transferred when nothing changed).
    pub async fn manifest_if_changed(&self, etag: &str) -> Result<Option<(Manifest, String)>, StoreError> {
        let key = self.key(MANIFEST);
        match self.client.get_object().bucket(&self.bucket).key(&key).if_none_match(etag).send().await {
            Ok(reply) => self.read_manifest(&key, reply).await.map(Some),
            Err(e) if status(&e) == Some(304) => Ok(None),
            Err(e) => Err(self.explain(&e, &key)),
        }
    }

    /// Store a component under its digest (a no-op when it is already there).
    pub async fn put_component(&self, artifact: &Artifact) -> Result<String, StoreError> {
        let key = self.component_key(&artifact.digest);
        let put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .if_none_match("*")
            .content_type("application/wasm")
            .body(ByteStream::from(artifact.bytes.clone()))
            .send()
            .await;
        match put {
            Ok(_) => Ok(key),
            // Already stored: the name is the content's digest, so it is the same content.
            Err(e) if status(&e) == Some(412) => Ok(key),
            Err(e) => Err(self.explain(&e, &key)),
        }
    }

    /// The component `digest` names, checked against it.
    pub async fn component(&self, digest: &Digest) -> Result<Artifact, StoreError> {
        let key = self.component_key(digest);
        let reply = self.client.get_object().bucket(&self.bucket).key(&key).send().await;
        let reply = reply.map_err(|e| self.explain(&e, &key))?;
        let bytes = reply.body.collect().await.map_err(|e| self.read_error(&key, e))?.into_bytes().to_vec();
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(StoreError::DigestMismatch { key: self.object(&key), expected: *digest, actual });
        }
        let origin = format!("{}@{}", self.location(), digest.short());
        Ok(Artifact::from_bytes(bytes, origin))
    }

    /// Replace the manifest if its ETag is still `expected` (None: only if there is none).
    pub async fn write_manifest(
        &self,
        manifest: &Manifest,
        expected: Option<&str>,
    ) -> Result<(), StoreError> {
        let key = self.key(MANIFEST);
        let body = serde_json::to_vec_pretty(manifest).map_err(|e| StoreError::BadManifest {
            location: self.location(),
            reason: format!("cannot encode it: {e}"),
        })?;
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            .body(ByteStream::from(body));
        let request = match expected {
            Some(etag) => request.if_match(etag),
            None => request.if_none_match("*"),
        };
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if matches!(status(&e), Some(412) | Some(409)) => Err(StoreError::Conflict {
                location: self.location(),
                expected: expected.unwrap_or("none").to_string(),
            }),
            Err(e) => Err(self.explain(&e, &key)),
        }
    }

    async fn read_manifest(
        &self,
        key: &str,
        reply: aws_sdk_s3::operation::get_object::GetObjectOutput,
    ) -> Result<(Manifest, String), StoreError> {
        let etag = reply.e_tag().unwrap_or_default().to_string();
        let bytes = reply.body.collect().await.map_err(|e| self.read_error(key, e))?.into_bytes();
        let manifest = serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::BadManifest { location: self.location(), reason: e.to_string() })?;
        Ok((manifest, etag))
    }

    fn read_error(&self, key: &str, e: impl std::fmt::Display) -> StoreError {
        StoreError::Failed {
            object: self.object(key),
            endpoint: self.endpoint.clone(),
            detail: format!("reading the reply: {e}"),
        }
    }

    /// What went wrong with a request for `key`, by the error's type and code.
    fn explain<E, R>(&self, error: &SdkError<E, R>, key: &str) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        let object = self.object(key);
        let endpoint = self.endpoint.clone();
        let detail = describe(error);
        match (error.code(), error) {
            (Some("NoSuchBucket"), _) => StoreError::NoSuchBucket { bucket: self.bucket.clone(), endpoint },
            (Some("NoSuchKey"), _) => StoreError::NoSuchObject { object, endpoint },
            (Some("AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch"), _) => {
                StoreError::AccessDenied {
                    object,
                    endpoint,
                    detail: error.message().unwrap_or("no detail").to_string(),
                }
            }
            _ if let Some(credentials) = cause::<CredentialsError>(error) => {
                StoreError::NoCredentials { object, detail: one_line(&credentials.to_string()) }
            }
            (_, SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)) => {
                StoreError::Unreachable { object, endpoint, detail }
            }
            (Some(code), _) => StoreError::Refused {
                object,
                endpoint,
                code: code.to_string(),
                message: error.message().unwrap_or("").to_string(),
            },
            (None, _) => StoreError::Failed { object, endpoint, detail },
        }
    }
}

/// The HTTP status of a failed request's response, if there was one.
fn status<E>(error: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Option<u16> {
    error.raw_response().map(|r| r.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(digest: &str) -> Deployment {
        Deployment {
            digest: Digest::of(digest.as_bytes()),
            size: 1,
            contract: weir_contract::CONTRACT.to_string(),
            name: None,
            version: None,
            deployed_at: "2026-11-25T10:00:00Z".parse().unwrap(),
            settings: BTreeMap::new(),
            rollback_of: None,
        }
    }

    #[test]
    fn each_deploy_keeps_the_one_before_and_a_bounded_history() {
        let mut manifest = Manifest::next(None, deployment("a"));
        assert_eq!(manifest.previous, None);
        for i in 0..60 {
            manifest = Manifest::next(Some(&manifest), deployment(&format!("d{i}")));
        }
        let d = |name: &str| Digest::of(name.as_bytes());
        assert_eq!(manifest.current.digest, d("d59"));
        assert_eq!(manifest.previous, Some(d("d58")));
        assert_eq!(manifest.history.len(), HISTORY);
        assert_eq!(manifest.history[0].digest, d("d58"));
    }

    #[test]
    fn command_line_settings_override_stored_ones() {
        let mut d = deployment("a");
        d.settings = [("window".to_string(), "60s".to_string()), ("slide".into(), "10s".into())].into();
        let merged = d.settings_with(&[("slide".into(), "5s".into())]);
        assert_eq!(merged, [("window".into(), "60s".into()), ("slide".into(), "5s".into())]);
    }

    #[test]
    fn the_manifest_has_the_fields_at_the_top_level() {
        let manifest = Manifest::next(Some(&Manifest::next(None, deployment("a"))), deployment("b"));
        let json: serde_json::Value = serde_json::to_value(&manifest).unwrap();
        for field in ["digest", "size", "contract", "deployed_at", "previous", "history"] {
            assert!(json.get(field).is_some(), "{field} in {json}");
        }
        assert_eq!(json["previous"], Digest::of(b"a").to_string());
        assert_eq!(json["deployed_at"], "2026-11-25T10:00:00Z");
        let back: Manifest = serde_json::from_value(json).unwrap();
        assert_eq!(back, manifest);
    }
}
