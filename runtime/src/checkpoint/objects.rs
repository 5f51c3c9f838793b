//! Where checkpoint bytes are kept: a directory (each file written whole or not at all) or a
//! prefix in an S3 bucket. The stores decide what the objects are called and mean.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Checkpoint, CheckpointError, codec};
use crate::location::Location;
use crate::s3::{Bucket, Condition};

/// Where the objects are: a directory or an S3 prefix.
#[derive(Clone, Debug)]
pub enum Objects {
    /// A local directory (for workers on one machine).
    Dir(PathBuf),
    /// A prefix in an S3 bucket.
    S3 {
        /// The bucket.
        bucket: Bucket,
        /// The prefix, without a trailing `/`.
        prefix: String,
    },
}

impl Objects {
    /// The objects at `location` (a directory or `s3://BUCKET/PREFIX`); makes no request.
    pub async fn open(location: &Location, region: Option<&str>) -> Result<Self, String> {
        match location {
            Location::File(path) => Ok(Self::Dir(path.clone())),
            Location::S3 { bucket, key } => Ok(Self::S3 {
                bucket: Bucket::connect_without_retries(bucket, region).await,
                prefix: key.trim_end_matches('/').to_string(),
            }),
            other => {
                Err(format!("--checkpoint {other} is not supported: give a directory or s3://BUCKET/PREFIX"))
            }
        }
    }

    /// Where they are, for messages and the lease table.
    pub fn location(&self) -> String {
        match self {
            Self::Dir(path) => path.display().to_string(),
            Self::S3 { bucket, prefix } => format!("s3://{}/{prefix}", bucket.name()),
        }
    }

    /// Write object `name` whole or not at all.
    pub async fn put(&self, name: &str, bytes: Vec<u8>) -> Result<(), CheckpointError> {
        match self {
            Self::Dir(path) => write_atomic(path, name, &bytes),
            Self::S3 { bucket, prefix } => {
                bucket.put(&key(prefix, name), bytes, "application/octet-stream", Condition::Always).await?;
                Ok(())
            }
        }
    }

    /// Delete object `name` (gone already is fine).
    pub async fn delete(&self, name: &str) -> Result<(), CheckpointError> {
        match self {
            Self::Dir(path) => match std::fs::remove_file(path.join(name)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(CheckpointError::Io {
                    action: "delete",
                    path: path.join(name).display().to_string(),
                    source: e,
                }),
                _ => Ok(()),
            },
            Self::S3 { bucket, prefix } => Ok(bucket.delete(&key(prefix, name)).await?),
        }
    }

    /// The checkpoint in object `name`.
    pub async fn read(&self, name: &str) -> Result<Checkpoint, CheckpointError> {
        let bytes = match self {
            Self::Dir(path) => std::fs::read(path.join(name)).map_err(|e| CheckpointError::Io {
                action: "read",
                path: path.join(name).display().to_string(),
                source: e,
            })?,
            Self::S3 { bucket, prefix } => bucket.get_existing(&key(prefix, name)).await?.0,
        };
        let object = format!("{}/{name}", self.location());
        codec::decode(&bytes).map_err(|reason| CheckpointError::Corrupt { object, reason })
    }
}

/// Write `name` under `root` whole or not at all: a temporary file, synced, renamed over it,
/// and the directory synced so the rename survives a power cut.
pub fn write_atomic(root: &Path, name: &str, bytes: &[u8]) -> Result<(), CheckpointError> {
    let io =
        |action, source| CheckpointError::Io { action, path: root.join(name).display().to_string(), source };
    let target = root.join(name);
    let dir = target.parent().unwrap_or(root);
    std::fs::create_dir_all(dir).map_err(|e| io("create", e))?;
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(|e| io("create a file in", e))?;
    temp.write_all(bytes).map_err(|e| io("write", e))?;
    temp.as_file().sync_all().map_err(|e| io("sync", e))?;
    temp.persist(&target).map_err(|e| io("rename into", e.error))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io("sync", e))
}

/// The S3 key of `name` under `prefix` (which has no trailing `/`).
pub fn key(prefix: &str, name: &str) -> String {
    if prefix.is_empty() { name.to_string() } else { format!("{prefix}/{name}") }
}
