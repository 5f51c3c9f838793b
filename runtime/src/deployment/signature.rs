//! Deployment signatures and the keys that make and check them. What a signature covers is
//! the entry's statement ([`super::entry::Deployment::statement`]).
//!
//! Signatures are ECDSA over P-256 with SHA-256, DER-encoded: what a KMS key of spec
//! ECC_NIST_P256 makes with ECDSA_SHA_256. Keys are PEM, PKCS#8 for a private key and
//! SubjectPublicKeyInfo for a public one (what `openssl` reads and writes, and what KMS's
//! GetPublicKey returns, in DER). A key's id is the sha256 of its public key (SPKI DER), so a
//! KMS key and its public key exported to a file are the same key to weir.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature as EcdsaSignature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The algorithm every weir signature uses, as the manifest names it.
pub const ALGORITHM: &str = "ECDSA_P256_SHA256";

/// A public key's id: the sha256 of its SubjectPublicKeyInfo DER, in hex.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyId(String);

impl KeyId {
    fn of(key: &VerifyingKey) -> Result<Self, KeyError> {
        let der = key.to_public_key_der().map_err(|e| KeyError::Encode(e.to_string()))?;
        Ok(Self(hex::encode(Sha256::digest(der.as_bytes()))))
    }

    /// The first 16 hex characters, for messages.
    pub fn short(&self) -> &str {
        self.0.get(..16).unwrap_or(&self.0)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A deployment entry's signature, as the manifest stores it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The signing key's id (signed too).
    pub key: KeyId,
    /// Who signed, for people: `kms:ARN` or `file:NAME`. Not signed, never trusted.
    pub signer: String,
    /// [`ALGORITHM`].
    pub algorithm: String,
    /// The DER-encoded signature, in base64.
    pub value: String,
}

/// A statement could not be encoded, or a key read, written or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key file could not be read.
    #[error("cannot read the key file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A key file is not a key of the expected kind.
    #[error(
        "{path} is not {expected} in PEM ({reason}): weir keys are ECDSA P-256, made by `weir keygen PATH` or `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`"
    )]
    NotAKey {
        /// The file (or `kms://KEY` for a KMS public key).
        path: String,
        /// `a private key (PKCS#8)` or `a public key (SubjectPublicKeyInfo)`.
        expected: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// A key file exists where a new one was to be written.
    #[error("{0} exists: weir keygen does not overwrite a key; give another path or remove it")]
    Exists(PathBuf),
    /// A key file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Encoding a key or statement failed.
    #[error("cannot encode: {0}")]
    Encode(String),
}

/// A public key that checks signatures, with where it came from.
#[derive(Clone, Debug)]
pub struct PublicKey {
    id: KeyId,
    key: VerifyingKey,
    source: String,
}

impl PublicKey {
    /// The public key in the PEM file at `path`.
    pub fn from_pem_file(path: &Path) -> Result<Self, KeyError> {
        let key = read_pem(path, "a public key (SubjectPublicKeyInfo)", VerifyingKey::from_public_key_pem)?;
        Self::new(key, path.display().to_string())
    }

    /// The public key in `der` (SubjectPublicKeyInfo, as KMS's GetPublicKey gives it).
    pub fn from_der(der: &[u8], source: String) -> Result<Self, KeyError> {
        let key = VerifyingKey::from_public_key_der(der).map_err(|e| KeyError::NotAKey {
            path: source.clone(),
            expected: "an ECC_NIST_P256 public key (SubjectPublicKeyInfo)",
            reason: e.to_string(),
        })?;
        Self::new(key, source)
    }

    fn new(key: VerifyingKey, source: String) -> Result<Self, KeyError> {
        Ok(Self { id: KeyId::of(&key)?, key, source })
    }

    /// Its id.
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// Where it was read from (a file, `kms://KEY`).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether `signature` is this key's signature of `message`.
    pub fn verifies(&self, message: &[u8], signature: &Signature) -> bool {
        if signature.key != self.id {
            return false;
        }
        let Ok(der) = BASE64.decode(&signature.value) else { return false };
        let Ok(signature) = EcdsaSignature::from_der(&der) else { return false };
        self.key.verify(message, &signature).is_ok()
    }
}

/// A private key kept in a file: for laptops and tests (CI signs with KMS).
pub struct LocalKey {
    key: SigningKey,
    public: PublicKey,
}

impl LocalKey {
    /// Make a new key: its private half written to `path` (readable by its owner only), its
    /// public half to `path.pub`. Neither may exist.
    pub fn generate(path: &Path) -> Result<PublicKey, KeyError> {
        let public_path = Self::public_path(path);
        for p in [path, &public_path] {
            if p.exists() {
                return Err(KeyError::Exists(p.to_path_buf()));
            }
        }
        let key = SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let private = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| KeyError::Encode(e.to_string()))?;
        let public = key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| KeyError::Encode(e.to_string()))?;
        write_new(path, private.as_bytes(), 0o600)?;
        write_new(&public_path, public.as_bytes(), 0o644)?;
        PublicKey::new(*key.verifying_key(), public_path.display().to_string())
    }

    /// Where [`LocalKey::generate`] puts the public half of `path`.
    pub fn public_path(path: &Path) -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(".pub");
        PathBuf::from(name)
    }

    /// The private key in the PEM file at `path`.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let key = read_pem(path, "a private key (PKCS#8)", SigningKey::from_pkcs8_pem)?;
        let public = PublicKey::new(*key.verifying_key(), path.display().to_string())?;
        Ok(Self { key, public })
    }

    /// Its public half.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The DER-encoded signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let signature: EcdsaSignature = self.key.sign(message);
        signature.to_der().as_bytes().to_vec()
    }
}

/// The signature `der` made by `public`'s key, as the manifest stores it.
pub fn signature(public: &PublicKey, signer: String, der: &[u8]) -> Signature {
    Signature { key: public.id.clone(), signer, algorithm: ALGORITHM.to_string(), value: BASE64.encode(der) }
}

/// The key of kind `expected` in the PEM file at `path`, decoded by `decode`.
fn read_pem<K, E: fmt::Display>(
    path: &Path,
    expected: &'static str,
    decode: impl FnOnce(&str) -> Result<K, E>,
) -> Result<K, KeyError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| KeyError::Read { path: path.to_path_buf(), source })?;
    decode(&text).map_err(|e| KeyError::NotAKey {
        path: path.display().to_string(),
        expected,
        reason: e.to_string(),
    })
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let written = options.open(path).and_then(|mut f| f.write_all(bytes));
    written.map_err(|source| KeyError::Write { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(dir: &Path, name: &str) -> LocalKey {
        LocalKey::generate(&dir.join(name)).unwrap();
        LocalKey::load(&dir.join(name)).unwrap()
    }

    fn signed(key: &LocalKey, message: &[u8]) -> Signature {
        signature(key.public(), "file:test".into(), &key.sign(message))
    }

    #[test]
    fn a_key_verifies_its_own_signature_of_that_message_only() {
        let dir = tempfile::tempdir().unwrap();
        let key = key(dir.path(), "k");
        let from_file = PublicKey::from_pem_file(&LocalKey::public_path(&dir.path().join("k"))).unwrap();
        assert_eq!(from_file.id(), key.public().id(), "the .pub file is the key's public half");
        let sig = signed(&key, b"statement");
        assert!(from_file.verifies(b"statement", &sig));
        assert!(!from_file.verifies(b"statemenT", &sig));
    }

    #[test]
    fn another_key_or_a_damaged_signature_does_not_verify() {
        let dir = tempfile::tempdir().unwrap();
        let (key, other) = (key(dir.path(), "a"), key(dir.path(), "b"));
        let sig = signed(&key, b"m");
        assert!(!other.public().verifies(b"m", &sig));
        assert!(
            !other.public().verifies(b"m", &Signature { key: other.public().id().clone(), ..sig.clone() })
        );
        let mut der = BASE64.decode(&sig.value).unwrap();
        let middle = der.len() / 2;
        der[middle] ^= 1;
        let damaged = Signature { value: BASE64.encode(&der), ..sig.clone() };
        assert!(!key.public().verifies(b"m", &damaged));
        let junk = Signature { value: "not base64!".into(), ..sig };
        assert!(!key.public().verifies(b"m", &junk));
    }

    #[test]
    fn keygen_refuses_to_overwrite_and_keeps_the_private_key_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        LocalKey::generate(&path).unwrap();
        assert!(matches!(LocalKey::generate(&path), Err(KeyError::Exists(_))));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let err = PublicKey::from_pem_file(&path).unwrap_err().to_string();
        assert!(err.contains("is not a public key"), "{err}");
        let err = LocalKey::load(&LocalKey::public_path(&path)).err().unwrap().to_string();
        assert!(err.contains("is not a private key"), "{err}");
    }
}
