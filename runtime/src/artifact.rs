//! Operator artifacts: a component's bytes, its sha256 [`Digest`], and where it came from.
//!
//! Resolved here: a file path, or an operator embedded in the binary (`builtin:NAME`);
//! operators deployed to S3 come from [`crate::deployment::store`]. The compiled form of an
//! artifact is the operator host's business ([`crate::operator::cache`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// The default operator (`sliding-window-max`), built by `build.rs` and embedded in `weir`.
pub const EMBEDDED_DEFAULT: &[u8] =
    include_bytes!(concat!(env!("WEIR_OPERATORS_DIR"), "/sliding_window_max.wasm"));

/// The folder holding the components built with weir (tests load the fixtures from here).
pub const BUILT_OPERATORS_DIR: &str = env!("WEIR_OPERATORS_DIR");

/// `rekey` (records keyed by a JSON field: the shuffle in front of a keyed job), embedded too.
pub const EMBEDDED_REKEY: &[u8] = include_bytes!(concat!(env!("WEIR_OPERATORS_DIR"), "/rekey.wasm"));

/// The operators embedded in weir, by `builtin:` name.
pub const BUILTIN_OPERATORS: &[&str] = &["sliding-window-max", "rekey"];

/// The sha256 of a component's bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// The first 12 hex characters, enough to tell versions apart in a log line.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..6])
    }
}

/// A digest that is not 64 hex characters.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not a sha256 digest (64 hex characters)")]
pub struct BadDigest(pub String);

impl FromStr for Digest {
    type Err = BadDigest;

    fn from_str(s: &str) -> Result<Self, BadDigest> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes).map_err(|_| BadDigest(s.to_string()))?;
        Ok(Self(bytes))
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

/// A component to run.
#[derive(Clone)]
pub struct Artifact {
    /// The component's bytes.
    pub bytes: Vec<u8>,
    /// Their sha256.
    pub digest: Digest,
    /// Where they came from, for messages: a path, or `built-in sliding-window-max`.
    pub origin: String,
    /// The sequence number of the deployment entry it was deployed as, when it came from a
    /// deployment in S3 (recorded in checkpoints, so a replayed older entry is refused).
    pub sequence: Option<u64>,
}

impl fmt::Debug for Artifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Artifact")
            .field("origin", &self.origin)
            .field("digest", &self.digest)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// Failure to obtain an artifact.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// No operator of that name is embedded.
    #[error("there is no built-in operator {name:?}; built-in operators: {}", BUILTIN_OPERATORS.join(", "))]
    NoBuiltin {
        /// The name asked for.
        name: String,
    },
    /// The file could not be read.
    #[error("cannot read operator {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl Artifact {
    /// An artifact from bytes in memory.
    pub fn from_bytes(bytes: Vec<u8>, origin: impl Into<String>) -> Self {
        Self { digest: Digest::of(&bytes), bytes, origin: origin.into(), sequence: None }
    }

    /// The embedded default operator.
    pub fn embedded_default() -> Self {
        Self::from_bytes(EMBEDDED_DEFAULT.to_vec(), "built-in sliding-window-max")
    }

    /// The operator embedded under `name` (see [`BUILTIN_OPERATORS`]).
    pub fn builtin(name: &str) -> Result<Self, ArtifactError> {
        match name {
            "sliding-window-max" => Ok(Self::embedded_default()),
            "rekey" => Ok(Self::from_bytes(EMBEDDED_REKEY.to_vec(), "built-in rekey")),
            _ => Err(ArtifactError::NoBuiltin { name: name.to_string() }),
        }
    }

    /// An artifact read from a file.
    pub fn from_file(path: &Path) -> Result<Self, ArtifactError> {
        let bytes =
            std::fs::read(path).map_err(|source| ArtifactError::Read { path: path.to_path_buf(), source })?;
        Ok(Self::from_bytes(bytes, path.display().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_read_back_from_hex_and_refuse_anything_else() {
        let d = Digest::of(b"weir");
        assert_eq!(d.to_string().parse::<Digest>(), Ok(d));
        assert_eq!(d.short().len(), 12);
        assert!("abc".parse::<Digest>().is_err());
        assert!("zz".repeat(32).parse::<Digest>().is_err());
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{d}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        assert!(serde_json::from_str::<Digest>("\"short\"").is_err());
    }
}
