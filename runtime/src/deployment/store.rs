//! Deployed operators in S3, the way the Flink application's jar was: under a prefix, each
//! component is stored once under its digest (`PREFIX/<sha256>.wasm`), and the manifest
//! `PREFIX/current.json` names the one to run, with its settings and the deployments before.
//!
//! The manifest is only ever replaced with a conditional write on the ETag it had when read
//! (or "must not exist yet" for the first deploy), so two deploys racing cannot silently
//! overwrite each other: the loser gets [`StoreError::Conflict`]. A component read back is
//! checked against the manifest's digest before anything uses it.

use serde::{Deserialize, Serialize};

use super::entry::Deployment;
use super::shadow::{Action, Candidate, Decision, Evidence};
use crate::artifact::{Artifact, Digest};
use crate::s3::{Bucket, Condition, S3Error};

/// The manifest's name under the prefix.
pub const MANIFEST: &str = "current.json";
/// Deployments kept in a manifest's history.
pub const HISTORY: usize = 50;

/// `PREFIX/current.json`: the deployment to run, the one before, and older ones; a candidate
/// shadowing it, and what was decided about candidates.
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
    /// A version run beside the current one on the same records, its outputs compared and
    /// never written ([`super::shadow`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<Candidate>,
    /// Candidates published, promoted and rejected, newest first, at most [`HISTORY`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<Decision>,
}

impl Manifest {
    /// The sequence number of a deployment made at `at` after `before` (None: the first
    /// deploy): one above every one it records, and at least `at` in Unix seconds. The clock
    /// keeps it growing even when `before` is an older manifest put back: a weir that refused
    /// that one as a replay accepts the next real deploy.
    pub fn next_sequence(before: Option<&Manifest>, at: jiff::Timestamp) -> u64 {
        let recorded = before.map_or(0, |m| {
            let candidate = m.candidate.as_ref().map(|c| &c.deployment);
            std::iter::once(&m.current)
                .chain(&m.history)
                .chain(candidate)
                .map(|d| d.sequence)
                .max()
                .unwrap_or(0)
        });
        let clock = u64::try_from(at.as_second()).unwrap_or(0);
        recorded.saturating_add(1).max(clock)
    }

    /// The manifest after deploying `next` over `self` (None: the first deploy). A candidate
    /// shadowing the version replaced is rejected: its evidence was about that version.
    pub fn next(before: Option<&Manifest>, next: Deployment) -> Manifest {
        match before {
            None => Manifest {
                current: next,
                previous: None,
                history: Vec::new(),
                candidate: None,
                decisions: Vec::new(),
            },
            Some(before) => {
                let mut history = Vec::with_capacity(HISTORY);
                history.push(before.current.clone());
                history.extend(before.history.iter().take(HISTORY - 1).cloned());
                let mut manifest = Manifest {
                    previous: Some(before.current.digest),
                    history,
                    candidate: None,
                    decisions: before.decisions.clone(),
                    current: next,
                };
                if let Some(candidate) = &before.candidate {
                    let reason = format!("{} was deployed live over it", manifest.current.digest.short());
                    manifest.decide(Action::Rejected, &candidate.deployment, reason);
                }
                manifest
            }
        }
    }

    /// This manifest with `candidate` shadowing its current version (replacing any other).
    pub fn with_candidate(mut self, candidate: Candidate, reason: String) -> Manifest {
        if let Some(before) = self.candidate.take() {
            let why = format!("candidate {} published over it", candidate.deployment.digest.short());
            self.decide(Action::Rejected, &before.deployment, why);
        }
        self.decide(Action::Candidate, &candidate.deployment, reason);
        self.candidate = Some(candidate);
        self
    }

    /// This manifest with its candidate made the current version, as it was published (its
    /// signature and sequence number), for `reason`; None without a candidate.
    pub fn promoted(&self, reason: String) -> Option<Manifest> {
        let mut before = self.clone();
        let candidate = before.candidate.take()?;
        let mut next = Manifest::next(Some(&before), candidate.deployment.clone());
        next.decide(Action::Promoted, &candidate.deployment, reason);
        Some(next)
    }

    /// This manifest without its candidate, for `reason`; None without a candidate.
    pub fn rejected(&self, reason: String) -> Option<Manifest> {
        let candidate = self.candidate.as_ref()?;
        let mut next = Manifest { candidate: None, ..self.clone() };
        next.decide(Action::Rejected, &candidate.deployment, reason);
        Some(next)
    }

    fn decide(&mut self, action: Action, deployment: &Deployment, reason: String) {
        let decision = Decision {
            at: jiff::Timestamp::now(),
            action,
            digest: deployment.digest,
            version: deployment.version.clone(),
            sequence: deployment.sequence,
            reason,
        };
        self.decisions.insert(0, decision);
        self.decisions.truncate(HISTORY);
    }
}

/// An S3 request failed, or what it returned cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The request failed.
    #[error(transparent)]
    S3(#[from] S3Error),
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
    bucket: Bucket,
    prefix: String,
}

impl OperatorStore {
    /// A store for `bucket` and `prefix` (without a trailing `/`), with AWS settings from the
    /// usual places; `region` overrides the configured one.
    pub async fn connect(bucket: &str, prefix: &str, region: Option<&str>) -> Self {
        Self::connect_as(bucket, prefix, region, None).await
    }

    /// The same, writing and reading as the role `role_arn` if given (assumed with the
    /// default chain's credentials).
    pub async fn connect_as(
        bucket: &str,
        prefix: &str,
        region: Option<&str>,
        role_arn: Option<&str>,
    ) -> Self {
        Self {
            bucket: Bucket::connect_as(bucket, region, role_arn).await,
            prefix: prefix.trim_end_matches('/').to_string(),
        }
    }

    /// `s3://BUCKET/PREFIX`.
    pub fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket.name(), self.prefix)
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
        match self.bucket.get(&self.key(MANIFEST)).await? {
            Some((bytes, etag)) => self.parse_manifest(&bytes, etag).map(Some),
            None => Ok(None),
        }
    }

    /// The manifest and its ETag; [`StoreError::NothingDeployed`] when there is none.
    pub async fn existing_manifest(&self) -> Result<(Manifest, String), StoreError> {
        self.manifest().await?.ok_or_else(|| StoreError::NothingDeployed(self.location()))
    }

    /// Like [`OperatorStore::manifest`], but None when its ETag is still `etag` (a conditional
    /// GET: nothing is transferred when nothing changed).
    pub async fn manifest_if_changed(&self, etag: &str) -> Result<Option<(Manifest, String)>, StoreError> {
        match self.bucket.get_if_changed(&self.key(MANIFEST), etag).await? {
            Some((bytes, etag)) => self.parse_manifest(&bytes, etag).map(Some),
            None => Ok(None),
        }
    }

    /// Store a component under its digest (a no-op when it is already there).
    pub async fn put_component(&self, artifact: &Artifact) -> Result<String, StoreError> {
        let key = self.component_key(&artifact.digest);
        match self.bucket.put(&key, artifact.bytes.clone(), "application/wasm", Condition::Absent).await {
            // Already stored: the name is the content's digest, so it is the same content.
            Ok(_) | Err(S3Error::PreconditionFailed { .. }) => Ok(key),
            Err(e) => Err(e.into()),
        }
    }

    /// The component `digest` names, checked against it.
    pub async fn component(&self, digest: &Digest) -> Result<Artifact, StoreError> {
        let key = self.component_key(digest);
        let (bytes, _) = self.bucket.get_existing(&key).await?;
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(StoreError::DigestMismatch {
                key: self.bucket.object(&key),
                expected: *digest,
                actual,
            });
        }
        let origin = format!("{}@{}", self.location(), digest.short());
        Ok(Artifact::from_bytes(bytes, origin))
    }

    /// The component `deployment` names, checked against its digest, with its sequence number.
    pub async fn deployed(&self, deployment: &Deployment) -> Result<Artifact, StoreError> {
        let mut artifact = self.component(&deployment.digest).await?;
        artifact.sequence = Some(deployment.sequence);
        Ok(artifact)
    }

    /// Replace the manifest if its ETag is still `expected` (None: only if there is none).
    pub async fn write_manifest(
        &self,
        manifest: &Manifest,
        expected: Option<&str>,
    ) -> Result<(), StoreError> {
        let body = serde_json::to_vec_pretty(manifest).map_err(|e| StoreError::BadManifest {
            location: self.location(),
            reason: format!("cannot encode it: {e}"),
        })?;
        let condition = match expected {
            Some(etag) => Condition::Matches(etag),
            None => Condition::Absent,
        };
        match self.bucket.put(&self.key(MANIFEST), body, "application/json", condition).await {
            Ok(_) => Ok(()),
            Err(S3Error::PreconditionFailed { .. }) => Err(StoreError::Conflict {
                location: self.location(),
                expected: expected.unwrap_or("none").to_string(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Where a weir's evidence about the candidate `sequence` is kept:
    /// `PREFIX/shadow/SEQUENCE/WORKER.json`.
    fn evidence_key(&self, sequence: u64, worker: &str) -> String {
        let worker: String = worker
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' })
            .collect();
        self.key(&format!("shadow/{sequence}/{worker}.json"))
    }

    /// Publish a weir's evidence about a candidate (replacing its earlier report).
    pub async fn put_evidence(&self, evidence: &Evidence) -> Result<(), StoreError> {
        let key = self.evidence_key(evidence.sequence, &evidence.worker);
        let body = serde_json::to_vec_pretty(evidence).map_err(|e| StoreError::BadManifest {
            location: self.location(),
            reason: format!("cannot encode shadow evidence: {e}"),
        })?;
        self.bucket.put(&key, body, "application/json", Condition::Always).await?;
        Ok(())
    }

    /// Every weir's evidence about the candidate `sequence`.
    pub async fn evidence(&self, sequence: u64) -> Result<Vec<Evidence>, StoreError> {
        let prefix = self.key(&format!("shadow/{sequence}/"));
        let mut found = Vec::new();
        for key in self.bucket.list(&prefix).await? {
            let Some((bytes, _)) = self.bucket.get(&key).await? else { continue };
            let evidence = serde_json::from_slice(&bytes).map_err(|e| StoreError::BadManifest {
                location: self.location(),
                reason: format!("{} is not shadow evidence weir wrote: {e}", self.bucket.object(&key)),
            })?;
            found.push(evidence);
        }
        Ok(found)
    }

    fn parse_manifest(&self, bytes: &[u8], etag: String) -> Result<(Manifest, String), StoreError> {
        let manifest = serde_json::from_slice(bytes)
            .map_err(|e| StoreError::BadManifest { location: self.location(), reason: e.to_string() })?;
        Ok((manifest, etag))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(digest: &str) -> Deployment {
        Deployment::example(digest)
    }

    #[test]
    fn each_deploy_keeps_the_one_before_and_a_bounded_history() {
        let mut manifest = Manifest::next(None, deployment("a"));
        assert_eq!(manifest.previous, None);
        let epoch = jiff::Timestamp::UNIX_EPOCH;
        assert_eq!(Manifest::next_sequence(None, epoch), 1);
        for i in 0..60 {
            let sequence = Manifest::next_sequence(Some(&manifest), epoch);
            manifest =
                Manifest::next(Some(&manifest), Deployment { sequence, ..deployment(&format!("d{i}")) });
        }
        assert_eq!(manifest.current.sequence, 60, "one above the one before, from 1");
        // The clock keeps it above what an older manifest put back records.
        let now: jiff::Timestamp = "2026-12-03T10:00:00Z".parse().unwrap();
        let first = Manifest::next(None, Deployment { sequence: 1, ..deployment("a") });
        assert_eq!(Manifest::next_sequence(Some(&first), now), now.as_second() as u64);
        let later = Manifest::next(None, Deployment { sequence: u64::MAX - 1, ..deployment("a") });
        assert_eq!(Manifest::next_sequence(Some(&later), now), u64::MAX, "one above the highest");
        let d = |name: &str| Digest::of(name.as_bytes());
        assert_eq!(manifest.current.digest, d("d59"));
        assert_eq!(manifest.previous, Some(d("d58")));
        assert_eq!(manifest.history.len(), HISTORY);
        assert_eq!(manifest.history[0].digest, d("d58"));
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
