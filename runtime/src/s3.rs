//! S3 access shared by the operator store ([`crate::deployment::store`]) and checkpoints
//! ([`crate::checkpoint`]): one client per bucket, path-style against an emulator, objects read
//! and written whole, conditional writes (`If-None-Match: *`, `If-Match: ETAG`) reported as
//! [`S3Error::PreconditionFailed`], and every other failure explained by the SDK's error type
//! and code.

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use weir_aws::{self as aws, Transient, cause, describe, one_line};

/// An S3 request failed, or its reply could not be read.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
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
        "access to {object} was denied at {endpoint} ({detail}): the credentials need {action} on it; check them and their permissions"
    )]
    AccessDenied {
        /// `s3://BUCKET/KEY`.
        object: String,
        /// Where the request went.
        endpoint: String,
        /// The permission the refused request needs, as IAM names it (`s3:GetObject`).
        action: &'static str,
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
    /// A conditional write found the object changed (or present, for `If-None-Match: *`).
    #[error("{object} was changed by someone else since it was read")]
    PreconditionFailed {
        /// `s3://BUCKET/KEY`.
        object: String,
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
}

impl Transient for S3Error {
    /// The endpoint was unreachable, or S3 was busy.
    fn is_transient(&self) -> bool {
        match self {
            S3Error::Unreachable { .. } | S3Error::Failed { .. } => true,
            S3Error::Refused { code, .. } => aws::is_transient_code(code),
            _ => false,
        }
    }
}

/// What a write requires of the object it replaces.
#[derive(Clone, Copy, Debug)]
pub enum Condition<'a> {
    /// Nothing: overwrite whatever is there.
    Always,
    /// The object must not exist yet.
    Absent,
    /// The object must still have this ETag.
    Matches(&'a str),
}

/// One bucket, with AWS settings from the usual places.
#[derive(Clone, Debug)]
pub struct Bucket {
    client: Client,
    name: String,
    endpoint: String,
}

impl Bucket {
    /// The bucket `name`; `region` overrides the configured region. Makes no request. The
    /// SDK retries transient failures (its standard mode, 3 attempts).
    pub async fn connect(name: &str, region: Option<&str>) -> Self {
        Self::connect_as(name, region, None).await
    }

    /// The same, with the credentials of the role `role_arn` if given, assumed with the
    /// default chain's.
    pub async fn connect_as(name: &str, region: Option<&str>, role_arn: Option<&str>) -> Self {
        Self::connect_with(aws::config_as(region, role_arn).await, name, true)
    }

    /// The same, with the SDK's retries off: for a caller that retries every call itself, so a
    /// failure is retried in one place.
    pub async fn connect_without_retries(name: &str, region: Option<&str>) -> Self {
        Self::connect_with(aws::config(region).await, name, false)
    }

    fn connect_with(config: aws::SdkConfig, name: &str, sdk_retries: bool) -> Self {
        let endpoint = aws::endpoint_override(&config, "S3");
        // Emulators (moto, MinIO) serve buckets by path, not as host names.
        let mut builder = aws_sdk_s3::config::Builder::from(&config).force_path_style(endpoint.is_some());
        if !sdk_retries {
            builder = builder.retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled());
        }
        let s3_config = builder.build();
        let endpoint = endpoint.unwrap_or_else(|| aws::regional_endpoint(&config, "S3"));
        Self { client: Client::from_conf(s3_config), name: name.to_string(), endpoint }
    }

    /// The bucket's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `s3://BUCKET/KEY`, for messages.
    pub fn object(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.name)
    }

    /// The object at `key` and its ETag, or None when there is none.
    pub async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, S3Error> {
        match self.client.get_object().bucket(&self.name).key(key).send().await {
            Ok(reply) => self.read(key, reply).await.map(Some),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(self.explain(&e, key)),
        }
    }

    /// The object at `key` and its ETag; its absence is an error.
    pub async fn get_existing(&self, key: &str) -> Result<(Vec<u8>, String), S3Error> {
        let reply = self.client.get_object().bucket(&self.name).key(key).send().await;
        self.read(key, reply.map_err(|e| self.explain(&e, key))?).await
    }

    /// The object at `key` if its ETag is no longer `etag` (a conditional GET: nothing is
    /// transferred when nothing changed); None when it is unchanged.
    pub async fn get_if_changed(&self, key: &str, etag: &str) -> Result<Option<(Vec<u8>, String)>, S3Error> {
        match self.client.get_object().bucket(&self.name).key(key).if_none_match(etag).send().await {
            Ok(reply) => self.read(key, reply).await.map(Some),
            Err(e) if status(&e) == Some(304) => Ok(None),
            Err(e) => Err(self.explain(&e, key)),
        }
    }

    /// Write `body` at `key` if `condition` holds; returns the new ETag.
    pub async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        condition: Condition<'_>,
    ) -> Result<String, S3Error> {
        let request = self
            .client
            .put_object()
            .bucket(&self.name)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body));
        let request = match condition {
            Condition::Always => request,
            Condition::Absent => request.if_none_match("*"),
            Condition::Matches(etag) => request.if_match(etag),
        };
        match request.send().await {
            Ok(reply) => Ok(reply.e_tag().unwrap_or_default().to_string()),
            Err(e) if matches!(status(&e), Some(412 | 409)) => {
                Err(S3Error::PreconditionFailed { object: self.object(key) })
            }
            Err(e) => Err(self.explain(&e, key)),
        }
    }

    /// Delete the object at `key` (no error if there is none).
    pub async fn delete(&self, key: &str) -> Result<(), S3Error> {
        match self.client.delete_object().bucket(&self.name).key(key).send().await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.explain(&e, key)),
        }
    }

    /// One request that fails as a write would if the bucket is missing or the credentials may
    /// not list `prefix`: for refusing a bad location before anything runs.
    pub async fn probe(&self, prefix: &str) -> Result<(), S3Error> {
        let listed = self.client.list_objects_v2().bucket(&self.name).prefix(prefix).max_keys(1).send().await;
        listed.map(drop).map_err(|e| self.explain(&e, prefix))
    }

    /// The keys under `prefix`, in S3's order (ascending).
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, S3Error> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let reply = self
                .client
                .list_objects_v2()
                .bucket(&self.name)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| self.explain(&e, prefix))?;
            keys.extend(reply.contents().iter().filter_map(|o| o.key().map(str::to_string)));
            match reply.next_continuation_token() {
                Some(next) if reply.is_truncated() == Some(true) => token = Some(next.to_string()),
                _ => return Ok(keys),
            }
        }
    }

    async fn read(
        &self,
        key: &str,
        reply: aws_sdk_s3::operation::get_object::GetObjectOutput,
    ) -> Result<(Vec<u8>, String), S3Error> {
        let etag = reply.e_tag().unwrap_or_default().to_string();
        let bytes = reply.body.collect().await.map_err(|e| S3Error::Failed {
            object: self.object(key),
            endpoint: self.endpoint.clone(),
            detail: format!("reading the reply: {e}"),
        })?;
        Ok((bytes.into_bytes().to_vec(), etag))
    }

    /// What went wrong with a request for `key`, by the error's type and code.
    fn explain<E>(&self, error: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>, key: &str) -> S3Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let object = self.object(key);
        let endpoint = self.endpoint.clone();
        let detail = describe(error);
        match (error.code(), error) {
            (Some("NoSuchBucket"), _) => S3Error::NoSuchBucket { bucket: self.name.clone(), endpoint },
            (Some("NoSuchKey"), _) => S3Error::NoSuchObject { object, endpoint },
            // Refused by code, or (a HEAD has no body, so no code) by its status.
            (Some("AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch"), _)
            | (None, SdkError::ServiceError(_))
                if error.code().is_some() || status(error) == Some(403) =>
            {
                S3Error::AccessDenied {
                    object,
                    endpoint,
                    action: permission(weir_aws::operation::<E>()),
                    detail: error.message().unwrap_or("403 Forbidden").to_string(),
                }
            }
            _ if let Some(credentials) = cause::<CredentialsError>(error) => {
                S3Error::NoCredentials { object, detail: one_line(&credentials.to_string()) }
            }
            (_, SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)) => {
                S3Error::Unreachable { object, endpoint, detail }
            }
            (Some(code), _) => S3Error::Refused {
                object,
                endpoint,
                code: code.to_string(),
                message: error.message().unwrap_or("").to_string(),
            },
            (None, _) => S3Error::Failed { object, endpoint, detail },
        }
    }
}

/// The IAM action an S3 operation needs: a HEAD reads the object, a listing lists the bucket.
fn permission(operation: &str) -> &'static str {
    match operation {
        "GetObject" | "HeadObject" => "s3:GetObject",
        "PutObject" => "s3:PutObject",
        "DeleteObject" | "DeleteObjects" => "s3:DeleteObject",
        "ListObjectsV2" | "ListObjects" | "HeadBucket" => "s3:ListBucket",
        _ => "the S3 permission of the request",
    }
}

/// The HTTP status of a failed request's response, if there was one.
fn status<E>(error: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Option<u16> {
    error.raw_response().map(|r| r.status().as_u16())
}
