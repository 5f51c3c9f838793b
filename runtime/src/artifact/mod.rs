//! Operator artifacts: a component's bytes, its sha256 digest, and where it came from; the
//! compiled cache keyed by that digest lives in [`cache`].
//!
//! Locations resolved here: a file path, or the built-in default operator embedded in the
//! binary; operators deployed to S3 are in [`store`], and [`watch`] looks for new versions.

pub mod cache;
pub mod store;
pub mod watch;

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// The default operator (`sliding-window-max`), built by `build.rs` and embedded in `weir`.
pub const EMBEDDED_DEFAULT: &[u8] =
    include_bytes!(concat!(env!("WEIR_OPERATORS_DIR"), "/sliding_window_max.wasm"));

/// The folder holding the components built with weir (tests load the fixtures from here).
pub const BUILT_OPERATORS_DIR: &str = env!("WEIR_OPERATORS_DIR");

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
        Self { digest: Digest::of(&bytes), bytes, origin: origin.into() }
    }

    /// The embedded default operator.
    pub fn embedded_default() -> Self {
        Self::from_bytes(EMBEDDED_DEFAULT.to_vec(), "built-in sliding-window-max")
    }

    /// An artifact read from a file.
    pub fn from_file(path: &Path) -> Result<Self, ArtifactError> {
        let bytes =
            std::fs::read(path).map_err(|source| ArtifactError::Read { path: path.to_path_buf(), source })?;
        Ok(Self::from_bytes(bytes, path.display().to_string()))
    }
}
