//! The compiled-component cache: compiling a component takes tens of milliseconds (more for
//! large ones), loading the compiled artifact well under one, so the first start compiles and
//! stores `<digest>.cwasm`, and later starts load it.
//!
//! The file name carries the component's sha256 and the engine's compatibility hash (wasmtime's
//! own: its version, target and compiler settings, hashed with sha256 so that the name stays
//! the same across Rust releases), so runs with and without `--max-call-time off`, which compile
//! differently, keep one entry each instead of replacing each other's; wasmtime also checks on
//! load that the artifact matches the engine, and a mismatch or a damaged file is recompiled. Files are written to a temporary name and renamed, so a crash never
//! leaves half a file under a real name.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::artifact::Artifact;

/// Where compiled components are kept.
#[derive(Clone, Debug)]
pub struct CompiledCache {
    dir: PathBuf,
}

/// Whether a load used the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded a compiled artifact.
    Hit,
    /// Compiled, and stored the result.
    Compiled,
    /// Compiled; the cache is disabled or could not be written.
    CompiledUncached,
}

impl CompiledCache {
    /// A cache in `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The default folder: `$WEIR_CACHE_DIR`, else `weir/compiled` in the user's cache folder
    /// (`~/.cache` on Linux).
    pub fn default_dir() -> Option<PathBuf> {
        match std::env::var_os("WEIR_CACHE_DIR") {
            Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
            _ => dirs::cache_dir().map(|d| d.join("weir").join("compiled")),
        }
    }

    fn path_for(&self, engine: &Engine, artifact: &Artifact) -> PathBuf {
        let mut hasher = StableHasher::default();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_hash = hex::encode(&hasher.0.finalize()[..8]);
        self.dir.join(format!("{}-{engine_hash}.cwasm", artifact.digest))
    }

    /// Load the compiled form of `artifact`, compiling and storing it on a miss.
    pub fn load_or_compile(
        cache: Option<&Self>,
        engine: &Engine,
        artifact: &Artifact,
    ) -> Result<(Component, CacheOutcome), wasmtime::Error> {
        let Some(cache) = cache else {
            return Ok((Component::new(engine, &artifact.bytes)?, CacheOutcome::CompiledUncached));
        };
        let path = cache.path_for(engine, artifact);
        if path.exists() {
            // SAFETY: `deserialize_file` trusts the file to be a wasmtime artifact. The file is
            // in weir's own cache folder, written by this function under a name that carries
            // the digest of its source; wasmtime checks its header and engine compatibility.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "compiled cache entry unusable, recompiling: {e}")
                }
            }
        }
        let component = Component::new(engine, &artifact.bytes)?;
        let outcome = match component
            .serialize()
            .map_err(|e| e.to_string())
            .and_then(|bytes| write_atomically(&cache.dir, &path, &bytes).map_err(|e| e.to_string()))
        {
            Ok(()) => CacheOutcome::Compiled,
            Err(e) => {
                tracing::warn!(dir = %cache.dir.display(), "cannot store the compiled operator (next start compiles again): {e}");
                CacheOutcome::CompiledUncached
            }
        };
        Ok((component, outcome))
    }
}

/// A `Hasher` that feeds sha256: `std`'s `DefaultHasher` may change between Rust releases,
/// which would orphan every cache entry.
#[derive(Default)]
struct StableHasher(Sha256);

impl Hasher for StableHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_be_bytes([
            digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
        ])
    }
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
