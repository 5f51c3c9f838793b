//! Signing a deployment entry at publish (`weir deploy --sign kms://KEY` or `--sign-key FILE`):
//! the entry's [`statement`] signed by a KMS key (the key never leaves KMS) or a local key, and
//! the signature checked against the key's public half before it is stored, so a key of the
//! wrong kind fails the deploy rather than every weir that reads it.

use std::path::Path;

use super::entry::Deployment;
use super::signature::{KeyError, LocalKey, PublicKey, Signature, signature};
use crate::kms::{Kms, KmsError};

/// The most a KMS `Sign` takes as a raw message.
const KMS_MAX_MESSAGE: usize = 4096;

/// Signing failed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The local key could not be used.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// KMS refused or failed.
    #[error(transparent)]
    Kms(#[from] KmsError),
    /// KMS signs at most 4096 bytes.
    #[error(
        "the entry to sign is {0} bytes and KMS signs at most {KMS_MAX_MESSAGE}: use fewer or shorter settings"
    )]
    TooLong(usize),
    /// The signature made does not verify with the key's public half.
    #[error(
        "the signature made with {0} does not verify with its public key: is it an ECC_NIST_P256 key for SIGN_VERIFY?"
    )]
    DoesNotVerify(String),
}

/// What signs entries.
pub enum Signer {
    /// A private key read from a file.
    Local {
        /// The key.
        key: LocalKey,
        /// `file:NAME`.
        label: String,
    },
    /// A KMS key.
    Kms {
        /// The client.
        kms: Kms,
        /// The key as given (id, ARN or alias/NAME).
        key: String,
        /// Its public half.
        public: PublicKey,
        /// `kms:ARN`.
        label: String,
    },
}

impl Signer {
    /// The private key in the PEM file at `path`.
    pub fn local(path: &Path) -> Result<Self, SignError> {
        let key = LocalKey::load(path)?;
        let name =
            path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        Ok(Self::Local { key, label: format!("file:{name}") })
    }

    /// The KMS key `key` (its public half read now, for its id).
    pub async fn kms(key: &str, region: Option<&str>) -> Result<Self, SignError> {
        let kms = Kms::connect(region).await;
        let reply = kms.public_key(key).await?;
        let public = PublicKey::from_der(&reply.der, format!("kms://{key}"))?;
        Ok(Self::Kms { kms, key: key.to_string(), public, label: format!("kms:{}", reply.key_id) })
    }

    /// The public half of the signing key.
    pub fn public(&self) -> &PublicKey {
        match self {
            Self::Local { key, .. } => key.public(),
            Self::Kms { public, .. } => public,
        }
    }

    /// The signature of `deployment` (its sequence number and everything else signed already set).
    pub async fn sign(&self, deployment: &Deployment) -> Result<Signature, SignError> {
        let public = self.public();
        let message = deployment.statement(public.id())?;
        let (der, label) = match self {
            Self::Local { key, label } => (key.sign(&message), label),
            Self::Kms { kms, key, label, .. } => {
                if message.len() > KMS_MAX_MESSAGE {
                    return Err(SignError::TooLong(message.len()));
                }
                (kms.sign(key, &message).await?, label)
            }
        };
        let signed = signature(public, label.clone(), &der);
        if !public.verifies(&message, &signed) {
            return Err(SignError::DoesNotVerify(public.source().to_string()));
        }
        Ok(signed)
    }
}
