//! Where weir keeps objects of its own: a directory or a prefix in an S3 bucket, each object
//! read and written whole, with the same conditional writes in both. An object's tag is S3's
//! ETag, or in a directory a digest of its content, so a store that replaces an object only if
//! it is still the one it last saw is written once for both. The checkpoint stores, a lease
//! group's checkpoints and the S3 dead letters keep their objects here.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use weir_aws::Transient;

use crate::location::Location;
pub use crate::s3::Condition;
use crate::s3::{Bucket, S3Error};

/// Where the objects are: a directory or an S3 prefix.
#[derive(Clone, Debug)]
pub enum Objects {
    /// A local directory.
    Dir(PathBuf),
    /// A prefix in an S3 bucket.
    S3 {
        /// The bucket.
        bucket: Bucket,
        /// The prefix, without a trailing `/`.
        prefix: String,
    },
}

/// An object could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// A file or directory could not be read or written.
    #[error("cannot {action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The object is not the one the write's condition named (another writer replaced it).
    #[error("{object} was replaced by another writer")]
    Changed {
        /// The object.
        object: String,
    },
    /// S3 refused or could not be reached.
    #[error(transparent)]
    S3(S3Error),
}

impl From<S3Error> for ObjectError {
    fn from(e: S3Error) -> Self {
        match e {
            S3Error::PreconditionFailed { object } => Self::Changed { object },
            other => Self::S3(other),
        }
    }
}

impl Transient for ObjectError {
    /// A throttled or unreachable S3; never a refusal, a missing object or a local I/O error.
    fn is_transient(&self) -> bool {
        matches!(self, Self::S3(e) if e.is_transient())
    }
}

impl Objects {
    /// The objects at `location` (a directory or `s3://BUCKET/PREFIX`); makes no request. S3
    /// calls are not retried by the SDK: each caller retries in one place.
    pub async fn open(location: &Location, region: Option<&str>) -> Result<Self, String> {
        match location {
            Location::File(path) => Ok(Self::Dir(path.clone())),
            Location::S3 { bucket, key } => Ok(Self::s3(bucket, key, region).await),
            other => {
                Err(format!("--checkpoint {other} is not supported: give a directory or s3://BUCKET/PREFIX"))
            }
        }
    }

    /// The objects under `s3://BUCKET/PREFIX`; makes no request.
    pub async fn s3(bucket: &str, prefix: &str, region: Option<&str>) -> Self {
        Self::S3 {
            bucket: Bucket::connect_without_retries(bucket, region).await,
            prefix: prefix.trim_end_matches('/').to_string(),
        }
    }

    /// Where they are, for messages and the lease table.
    pub fn location(&self) -> String {
        match self {
            Self::Dir(path) => path.display().to_string(),
            Self::S3 { bucket, prefix } => format!("s3://{}/{prefix}", bucket.name()),
        }
    }

    /// Object `name` in full, for messages.
    pub fn describe(&self, name: &str) -> String {
        format!("{}/{name}", self.location())
    }

    fn io(&self, action: &'static str, name: &str, source: std::io::Error) -> ObjectError {
        ObjectError::Io { action, path: self.describe(name), source }
    }

    /// One request that fails as a write would if the place is missing or may not be written
    /// (S3: the bucket, or the credentials' permission to list the prefix); a directory is
    /// created. For refusing a bad location before anything runs.
    pub async fn probe(&self) -> Result<(), ObjectError> {
        match self {
            Self::Dir(path) => std::fs::create_dir_all(path).map_err(|e| self.io("create", "", e)),
            Self::S3 { bucket, prefix } => Ok(bucket.probe(&key(prefix, "")).await?),
        }
    }

    /// Object `name` and its tag, or None when there is none.
    pub async fn get(&self, name: &str) -> Result<Option<(Vec<u8>, String)>, ObjectError> {
        match self {
            Self::Dir(path) => match std::fs::read(path.join(name)) {
                Ok(bytes) => {
                    let tag = tag_of(&bytes);
                    Ok(Some((bytes, tag)))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(self.io("read", name, e)),
            },
            Self::S3 { bucket, prefix } => Ok(bucket.get(&key(prefix, name)).await?),
        }
    }

    /// Object `name`; its absence is an error.
    pub async fn read(&self, name: &str) -> Result<Vec<u8>, ObjectError> {
        match self {
            Self::Dir(path) => std::fs::read(path.join(name)).map_err(|e| self.io("read", name, e)),
            Self::S3 { bucket, prefix } => Ok(bucket.get_existing(&key(prefix, name)).await?.0),
        }
    }

    /// Write object `name` whole or not at all if `condition` holds (else
    /// [`ObjectError::Changed`]); returns its new tag. In a directory the condition is checked
    /// by this process: the directory's user guards it against others (the checkpoint store
    /// holds a lock).
    pub async fn put(
        &self,
        name: &str,
        bytes: Vec<u8>,
        content_type: &str,
        condition: Condition<'_>,
    ) -> Result<String, ObjectError> {
        match self {
            Self::Dir(path) => {
                // Only a conditional write reads what is there (a checkpoint object, written
                // unconditionally, can be megabytes).
                let holds = match condition {
                    Condition::Always => true,
                    Condition::Absent => {
                        !path.join(name).try_exists().map_err(|e| self.io("read", name, e))?
                    }
                    Condition::Matches(tag) => {
                        self.get(name).await?.is_some_and(|(_, current)| current == tag)
                    }
                };
                if !holds {
                    return Err(ObjectError::Changed { object: self.describe(name) });
                }
                write_atomic(path, name, &bytes).map_err(|(action, e)| self.io(action, name, e))?;
                Ok(tag_of(&bytes))
            }
            Self::S3 { bucket, prefix } => {
                Ok(bucket.put(&key(prefix, name), bytes, content_type, condition).await?)
            }
        }
    }

    /// Delete object `name` (gone already is fine).
    pub async fn delete(&self, name: &str) -> Result<(), ObjectError> {
        match self {
            Self::Dir(path) => match std::fs::remove_file(path.join(name)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(self.io("delete", name, e)),
                _ => Ok(()),
            },
            Self::S3 { bucket, prefix } => Ok(bucket.delete(&key(prefix, name)).await?),
        }
    }

    /// The names of the objects in `folder` (relative to the root, as the other calls take
    /// them), in ascending order; an absent folder has none.
    pub async fn list(&self, folder: &str) -> Result<Vec<String>, ObjectError> {
        let mut names = match self {
            Self::Dir(path) => match std::fs::read_dir(path.join(folder)) {
                Ok(entries) => entries
                    .flatten()
                    .filter_map(|e| e.file_name().to_str().map(|n| format!("{folder}/{n}")))
                    .collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(self.io("list", folder, e)),
            },
            Self::S3 { bucket, prefix } => {
                let root = key(prefix, "");
                let keys = bucket.list(&key(prefix, &format!("{folder}/"))).await?;
                keys.into_iter().filter_map(|k| k.strip_prefix(&root).map(str::to_string)).collect()
            }
        };
        names.sort();
        Ok(names)
    }
}

/// A directory object's tag: a digest of its content.
fn tag_of(bytes: &[u8]) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(bytes))
}

/// Write `name` under `root` whole or not at all: a temporary file, synced, renamed over it,
/// and the directory synced so the rename survives a power cut. On failure, what was being
/// done and why.
fn write_atomic(root: &Path, name: &str, bytes: &[u8]) -> Result<(), (&'static str, std::io::Error)> {
    let target = root.join(name);
    let dir = target.parent().unwrap_or(root);
    std::fs::create_dir_all(dir).map_err(|e| ("create", e))?;
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(|e| ("create a file in", e))?;
    temp.write_all(bytes).map_err(|e| ("write", e))?;
    temp.as_file().sync_all().map_err(|e| ("sync", e))?;
    temp.persist(&target).map_err(|e| ("rename into", e.error))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| ("sync", e))
}

/// The S3 key of `name` under `prefix` (which has no trailing `/`; an empty name gives the
/// prefix's own folder).
fn key(prefix: &str, name: &str) -> String {
    if prefix.is_empty() { name.to_string() } else { format!("{prefix}/{name}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_directory_refuses_a_write_whose_condition_another_write_broke() {
        let dir = tempfile::tempdir().unwrap();
        let objects = Objects::Dir(dir.path().to_path_buf());
        let first = objects.put("LATEST", b"1".to_vec(), "", Condition::Absent).await.unwrap();
        assert!(matches!(
            objects.put("LATEST", b"x".to_vec(), "", Condition::Absent).await,
            Err(ObjectError::Changed { .. })
        ));
        let second = objects.put("LATEST", b"2".to_vec(), "", Condition::Matches(&first)).await.unwrap();
        assert!(matches!(
            objects.put("LATEST", b"3".to_vec(), "", Condition::Matches(&first)).await,
            Err(ObjectError::Changed { .. })
        ));
        assert_eq!(objects.get("LATEST").await.unwrap(), Some((b"2".to_vec(), second)));
    }

    #[tokio::test]
    async fn a_directory_lists_a_folder_by_the_names_the_other_calls_take() {
        let dir = tempfile::tempdir().unwrap();
        let objects = Objects::Dir(dir.path().to_path_buf());
        assert_eq!(objects.list("checkpoints").await.unwrap(), Vec::<String>::new());
        for name in ["checkpoints/2.ckpt", "checkpoints/1.ckpt", "other/3.ckpt"] {
            objects.put(name, name.as_bytes().to_vec(), "", Condition::Always).await.unwrap();
        }
        let listed = objects.list("checkpoints").await.unwrap();
        assert_eq!(listed, ["checkpoints/1.ckpt", "checkpoints/2.ckpt"]);
        objects.delete(&listed[0]).await.unwrap();
        objects.delete(&listed[0]).await.unwrap();
        assert_eq!(objects.read(&listed[1]).await.unwrap(), b"checkpoints/2.ckpt");
        assert!(matches!(objects.read(&listed[0]).await, Err(ObjectError::Io { .. })));
    }
}
