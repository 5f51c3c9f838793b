//! Which deployed versions may run when `weir run --trust` is given: an entry signed by one of
//! the trusted public keys, over exactly its content ([`Deployment::statement`]), and
//! later in the deployment's sequence than every entry this weir accepted before, so that an
//! older signed entry put back as current cannot pass for new.
//!
//! Every check is made on the manifest alone, before the component is downloaded, compiled or
//! instantiated. The keys are read once, at start: from PEM files (offline), or from KMS
//! (`kms://KEY`, one GetPublicKey each).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::entry::Deployment;
use super::signature::{ALGORITHM, KeyError, PublicKey};
use crate::kms::{Kms, KmsError};

/// Where a trusted key comes from: `kms://KEY` (a key id, ARN or alias/NAME) or a PEM file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// A public key in a PEM file.
    File(PathBuf),
    /// The public half of a KMS key.
    Kms(String),
}

impl FromStr for KeySource {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.strip_prefix("kms://") {
            Some("") => Err("kms:// needs a key: kms://KEY_ID, kms://alias/NAME or kms://ARN".into()),
            Some(key) => Ok(Self::Kms(key.to_string())),
            None if s.is_empty() => Err("give a public key file or kms://KEY".into()),
            None => Ok(Self::File(PathBuf::from(s))),
        }
    }
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Kms(key) => write!(f, "kms://{key}"),
        }
    }
}

/// A trusted key could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// A key file could not be read or is no key.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// KMS did not give the public key.
    #[error(transparent)]
    Kms(#[from] KmsError),
}

/// Why a deployment entry may not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// It has no signature.
    #[error(
        "it is not signed, and only versions signed by a trusted key run (--trust): deploy it with --sign"
    )]
    Unsigned,
    /// Its signing key is not trusted.
    #[error("it is signed by key {key} ({signer}), which is not trusted (trusted: {trusted})")]
    UntrustedKey {
        /// The key's id (short).
        key: String,
        /// Who the entry says signed.
        signer: String,
        /// The trusted keys' ids (short).
        trusted: String,
    },
    /// The signature is not the key's signature of this entry.
    #[error(
        "its signature by key {key} does not match it ({detail}): the entry or its signature was changed after signing"
    )]
    BadSignature {
        /// The key's id (short).
        key: String,
        /// What did not match.
        detail: String,
    },
    /// It is not later in the deployment's sequence than one accepted before.
    #[error(
        "its sequence number {sequence} is not above {seen}, that of a version accepted before: an older signed version was put back; deploy a new one"
    )]
    Replayed {
        /// The entry's sequence number.
        sequence: u64,
        /// The highest accepted before.
        seen: u64,
    },
}

impl Refusal {
    /// The `reason` label of `weir_operator_versions_refused_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unsigned => "unsigned",
            Self::UntrustedKey { .. } => "untrusted-key",
            Self::BadSignature { .. } => "bad-signature",
            Self::Replayed { .. } => "replayed",
        }
    }
}

/// The trusted keys, and the highest sequence number accepted so far.
#[derive(Clone, Debug)]
pub struct Trust {
    keys: Vec<PublicKey>,
    seen: Option<u64>,
}

impl Trust {
    /// Trust `keys`.
    pub fn new(keys: Vec<PublicKey>) -> Self {
        Self { keys, seen: None }
    }

    /// Read the keys `sources` name (KMS ones through a client for `region`).
    pub async fn load(sources: &[KeySource], region: Option<&str>) -> Result<Self, TrustError> {
        // A client (and the AWS configuration it loads) only once a key comes from KMS: trusting
        // key files stays offline.
        let kms = tokio::sync::OnceCell::new();
        let mut keys = Vec::with_capacity(sources.len());
        for source in sources {
            keys.push(match source {
                KeySource::File(path) => PublicKey::from_pem_file(path)?,
                KeySource::Kms(key) => {
                    let reply = kms.get_or_init(|| Kms::connect(region)).await.public_key(key).await?;
                    PublicKey::from_der(&reply.der, format!("kms://{key}"))?
                }
            });
        }
        Ok(Self::new(keys))
    }

    /// The trusted keys.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// The trusted key that signed `deployment`, if its signature holds and it is not older
    /// than an entry accepted before; remembers nothing.
    pub fn check(&self, deployment: &Deployment) -> Result<&PublicKey, Refusal> {
        let signature = deployment.signature.as_ref().ok_or(Refusal::Unsigned)?;
        let key =
            self.keys.iter().find(|k| *k.id() == signature.key).ok_or_else(|| Refusal::UntrustedKey {
                key: signature.key.short().to_string(),
                signer: signature.signer.clone(),
                trusted: self.keys.iter().map(|k| k.id().short()).collect::<Vec<_>>().join(", "),
            })?;
        let bad = |detail: String| Refusal::BadSignature { key: key.id().short().to_string(), detail };
        if signature.algorithm != ALGORITHM {
            return Err(bad(format!("algorithm {:?}, not {ALGORITHM}", signature.algorithm)));
        }
        let verified = deployment.statement(key.id()).is_ok_and(|message| key.verifies(&message, signature));
        if !verified {
            return Err(bad("verification failed".into()));
        }
        match self.seen {
            Some(seen) if deployment.sequence <= seen => {
                Err(Refusal::Replayed { sequence: deployment.sequence, seen })
            }
            _ => Ok(key),
        }
    }

    /// [`Trust::check`], then remember its sequence number: no entry at or below it is accepted
    /// after.
    pub fn accept(&mut self, deployment: &Deployment) -> Result<PublicKey, Refusal> {
        let key = self.check(deployment)?.clone();
        self.seen = Some(deployment.sequence);
        Ok(key)
    }

    /// The run goes on from a checkpoint an earlier run took while the entry `checkpointed`
    /// ran, and `running` is the entry's sequence number now: it must not be older (an older
    /// signed entry put back while weir was stopped; the same one restarted is fine), and no
    /// entry at or below `checkpointed` is accepted after.
    pub fn resumed(&mut self, running: u64, checkpointed: u64) -> Result<(), Refusal> {
        if running < checkpointed {
            return Err(Refusal::Replayed { sequence: running, seen: checkpointed });
        }
        self.seen = Some(self.seen.map_or(checkpointed, |seen| seen.max(checkpointed)));
        Ok(())
    }
}

/// Who signed `deployment`, in words: `signed by key 0123456789abcdef (file:ci.key)`, or
/// `unsigned`.
pub fn signed_by(deployment: &Deployment) -> String {
    match &deployment.signature {
        Some(s) => format!("signed by key {} ({})", s.key.short(), s.signer),
        None => "unsigned".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::Digest;
    use crate::deployment::signature::{LocalKey, signature};

    fn deployment(sequence: u64) -> Deployment {
        Deployment {
            digest: Digest::of(b"component"),
            size: 9,
            contract: "weir:operator@0.2.0".into(),
            name: Some("op".into()),
            version: Some("1".into()),
            grouping: None,
            deployed_at: "2026-12-03T10:00:00Z".parse().unwrap(),
            settings: Default::default(),
            rollback_of: None,
            sequence,
            signature: None,
        }
    }

    fn signed(key: &LocalKey, sequence: u64) -> Deployment {
        let mut d = deployment(sequence);
        let message = d.statement(key.public().id()).unwrap();
        d.signature = Some(signature(key.public(), "file:k".into(), &key.sign(&message)));
        d
    }

    #[test]
    fn only_signed_entries_of_trusted_keys_newer_than_the_last_are_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<LocalKey> = ["a", "b"]
            .iter()
            .map(|n| {
                LocalKey::generate(&dir.path().join(n)).unwrap();
                LocalKey::load(&dir.path().join(n)).unwrap()
            })
            .collect();
        let mut trust = Trust::new(vec![keys[0].public().clone()]);
        let reason = |r: Result<PublicKey, Refusal>| r.err().map(|r| r.reason());

        assert_eq!(reason(trust.accept(&deployment(1))), Some("unsigned"));
        assert_eq!(reason(trust.accept(&signed(&keys[1], 1))), Some("untrusted-key"));
        let mut tampered = signed(&keys[0], 1);
        tampered.settings.insert("window".into(), "1s".into());
        assert_eq!(reason(trust.accept(&tampered)), Some("bad-signature"));

        assert_eq!(reason(trust.accept(&signed(&keys[0], 2))), None);
        assert_eq!(reason(trust.accept(&signed(&keys[0], 1))), Some("replayed"), "older than accepted");
        assert_eq!(reason(trust.accept(&signed(&keys[0], 2))), Some("replayed"), "the same number again");
        assert_eq!(reason(trust.accept(&signed(&keys[0], 3))), None);
        assert_eq!(
            trust.resumed(9, 10).err().map(|r| r.reason()),
            Some("replayed"),
            "older than the checkpoint's"
        );
        assert!(trust.resumed(10, 10).is_ok(), "the checkpoint's own entry, restarted");
        assert_eq!(reason(trust.accept(&signed(&keys[0], 9))), Some("replayed"), "below a checkpoint's");
        // check() remembers nothing.
        assert!(trust.check(&signed(&keys[0], 11)).is_ok());
        assert!(trust.check(&signed(&keys[0], 11)).is_ok());
    }

    #[test]
    fn a_change_to_any_signed_field_breaks_the_signature_and_the_others_do_not() {
        let dir = tempfile::tempdir().unwrap();
        LocalKey::generate(&dir.path().join("k")).unwrap();
        let key = LocalKey::load(&dir.path().join("k")).unwrap();
        let trust = Trust::new(vec![key.public().clone()]);
        let mut d = deployment(7);
        d.grouping = Some("the JSON field \"TICKER\"".into());
        d.settings.insert("window".into(), "60s".into());
        let message = d.statement(key.public().id()).unwrap();
        d.signature = Some(signature(key.public(), "file:k".into(), &key.sign(&message)));
        assert!(trust.check(&d).is_ok());

        type Change = fn(&mut Deployment);
        let signed: [(&str, Change); 7] = [
            ("digest", |d| d.digest = Digest::of(b"other")),
            ("name", |d| d.name = Some("other".into())),
            ("version", |d| d.version = Some("2".into())),
            ("contract", |d| d.contract = "weir:operator@0.3.0".into()),
            ("grouping", |d| d.grouping = Some("the partition key".into())),
            ("settings", |d| {
                d.settings.insert("slide".into(), "1s".into());
            }),
            ("sequence", |d| d.sequence = 8),
        ];
        for (what, change) in signed {
            let mut changed = d.clone();
            change(&mut changed);
            let refused = trust.check(&changed).err().map(|r| r.reason());
            assert_eq!(refused, Some("bad-signature"), "a changed {what}");
        }
        let unsigned: [(&str, Change); 3] = [
            ("deployed_at", |d| d.deployed_at = "2027-01-01T00:00:00Z".parse().unwrap()),
            ("rollback_of", |d| d.rollback_of = Some(Digest::of(b"before"))),
            ("signer", |d| d.signature.as_mut().unwrap().signer = "someone".into()),
        ];
        for (what, change) in unsigned {
            let mut changed = d.clone();
            change(&mut changed);
            assert!(trust.check(&changed).is_ok(), "{what} is for people, not signed");
        }
    }

    #[test]
    fn key_sources_are_files_or_kms_keys() {
        assert_eq!("kms://alias/weir".parse(), Ok(KeySource::Kms("alias/weir".into())));
        assert_eq!("keys/ci.pub".parse(), Ok(KeySource::File("keys/ci.pub".into())));
        assert!("kms://".parse::<KeySource>().is_err());
    }
}
