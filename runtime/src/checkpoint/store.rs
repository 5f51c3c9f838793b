//! Where checkpoints live: a directory or `s3://BUCKET/PREFIX`, the same layout in both:
//!
//! ```text
//! LOCATION/checkpoints/00000000000000000007.ckpt   one object per checkpoint (codec.rs)
//! LOCATION/LATEST                                  JSON pointer to the newest complete one
//! ```
//!
//! A checkpoint's object is written first, then the pointer; a reader follows the pointer, so
//! it only ever sees complete checkpoints. In a directory each file is written to a temporary
//! name, synced and renamed, and the directory is held with a lock (`LOCK`) so a second process
//! is refused. In S3 the pointer is replaced only with a conditional write on the ETag this
//! process last saw, so a stale process (paused, partitioned, or simply a second one) cannot
//! overwrite a newer checkpoint: it gets [`CheckpointError::Fenced`] and stops. The last
//! [`KEEP`] checkpoints are kept; older ones are deleted only after the pointer moved past them.
//!
//! S3 requests are retried in one place: not by the SDK, but by the pipeline's checkpoint
//! writer (every write, with backoff, counted) and here for the reads at start ([`READ_ATTEMPTS`]).

use std::fs::File;
use std::path::{Path, PathBuf};

use super::objects::{key, write_atomic};
use super::pointer::{Pointer, this_writer};
use super::{Checkpoint, CheckpointError, KEEP, codec};
use crate::s3::{Bucket, Condition, S3Error};

/// Attempts at reading the newest checkpoint at start before a transient S3 failure is
/// reported (about 6 s of backoff in all).
pub const READ_ATTEMPTS: u32 = 5;
/// The pointer's name.
pub const POINTER: &str = "LATEST";
const FOLDER: &str = "checkpoints";

fn object_name(id: u64) -> String {
    format!("{FOLDER}/{id:020}.ckpt")
}

/// The id in an object name `checkpoints/<id>.ckpt`.
fn id_of(name: &str) -> Option<u64> {
    name.rsplit('/').next()?.strip_suffix(".ckpt")?.parse().ok()
}

/// A checkpoint location, opened.
pub enum CheckpointStore {
    /// A local directory.
    Dir(DirStore),
    /// A prefix in an S3 bucket.
    S3(S3Store),
    /// Either, shared by the workers of a lease group.
    Leased(super::leased::LeasedStore),
}

impl CheckpointStore {
    /// `DIR`, created if missing, and locked against a second process.
    pub fn dir(path: &Path) -> Result<Self, CheckpointError> {
        let io = |action, source| CheckpointError::Io { action, path: path.display().to_string(), source };
        std::fs::create_dir_all(path.join(FOLDER)).map_err(|e| io("create", e))?;
        let lock = File::create(path.join("LOCK")).map_err(|e| io("create a lock in", e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(CheckpointError::Locked { dir: path.display().to_string() });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io("lock", e)),
        }
        Ok(Self::Dir(DirStore { path: path.to_path_buf(), _lock: lock }))
    }

    /// `s3://BUCKET/PREFIX`; makes no request.
    pub async fn s3(bucket: &str, prefix: &str, region: Option<&str>) -> Self {
        Self::S3(S3Store {
            bucket: Bucket::connect_without_retries(bucket, region).await,
            prefix: prefix.trim_end_matches('/').to_string(),
            pointer_etag: None,
            last_id: 0,
        })
    }

    /// Where it is, for messages.
    pub fn location(&self) -> String {
        match self {
            Self::Dir(d) => d.path.display().to_string(),
            Self::S3(s) => format!("s3://{}/{}", s.bucket.name(), s.prefix),
            Self::Leased(l) => l.location(),
        }
    }

    /// The number the next checkpoint written here must have at least: names and pointers are
    /// made of it, so it never goes back, even for a run (or a lease term) that restored nothing.
    pub fn next_id(&self) -> u64 {
        match self {
            Self::Dir(_) => 1,
            Self::S3(s) => s.last_id + 1,
            Self::Leased(l) => l.next_id(),
        }
    }

    /// The newest complete checkpoint, if any; transient S3 failures are retried.
    pub async fn latest(&mut self) -> Result<Option<Checkpoint>, CheckpointError> {
        let mut delays = crate::s3::read_retries();
        loop {
            match self.read_latest().await {
                Err(CheckpointError::S3(e)) if e.is_transient() && delays.attempts() + 1 < READ_ATTEMPTS => {
                    let delay = delays.next_delay();
                    tracing::warn!(
                        "cannot read the checkpoints at {} ({e}); trying again in {delay:?}",
                        self.location()
                    );
                    tokio::time::sleep(delay).await;
                }
                other => return other,
            }
        }
    }

    async fn read_latest(&mut self) -> Result<Option<Checkpoint>, CheckpointError> {
        let location = self.location();
        let Some(pointer) = self.claim().await? else { return Ok(None) };
        let bytes = match self {
            Self::Dir(d) => d.read(&pointer.object)?,
            Self::S3(s) => s.bucket.get_existing(&s.key(&pointer.object)).await?.0,
            // A lease group has no newest checkpoint: each lease names its own.
            Self::Leased(_) => return Ok(None),
        };
        let object = format!("{location}/{}", pointer.object);
        let checkpoint =
            codec::decode(&bytes).map_err(|reason| CheckpointError::Corrupt { object, reason })?;
        if let Self::S3(s) = self {
            s.last_id = pointer.id;
        }
        Ok(Some(checkpoint))
    }

    /// The pointer, taken over from any process that was writing here before: in S3 it is
    /// written again unchanged with a conditional write on the ETag just read, so that the
    /// previous writer's next write fails ([`CheckpointError::Fenced`]) and this one, the
    /// newest, carries on. Tried again while the previous writer keeps moving it.
    async fn claim(&mut self) -> Result<Option<Pointer>, CheckpointError> {
        for _ in 0..READ_ATTEMPTS {
            let pointer = self.pointer().await?;
            let Self::S3(s) = self else { return Ok(pointer) };
            let (Some(found), Some(etag)) = (pointer, s.pointer_etag.clone()) else { return Ok(None) };
            let claimed = Pointer { writer: this_writer(), ..found.clone() };
            let bytes = serde_json::to_vec_pretty(&claimed).unwrap_or_default();
            match s.bucket.put(&s.key(POINTER), bytes, "application/json", Condition::Matches(&etag)).await {
                Ok(etag) => {
                    s.pointer_etag = Some(etag);
                    return Ok(Some(found));
                }
                Err(S3Error::PreconditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(CheckpointError::Fenced { location: self.location(), id: 0 })
    }

    /// The pointer, if any (and, in S3, remember its ETag for the next write).
    pub async fn pointer(&mut self) -> Result<Option<Pointer>, CheckpointError> {
        let location = self.location();
        let bytes = match self {
            Self::Dir(d) => match std::fs::read(d.path.join(POINTER)) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(d.io("read", POINTER, e)),
            },
            Self::S3(s) => match s.bucket.get(&s.key(POINTER)).await? {
                Some((bytes, etag)) => {
                    s.pointer_etag = Some(etag);
                    bytes
                }
                None => return Ok(None),
            },
            Self::Leased(_) => return Ok(None),
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| CheckpointError::Corrupt {
            object: format!("{location}/{POINTER}"),
            reason: e.to_string(),
        })
    }

    /// Write `checkpoint`, then point at it, then delete checkpoints older than the last
    /// [`KEEP`]. Returns the pointer written.
    pub async fn write(&mut self, checkpoint: &Checkpoint) -> Result<Pointer, CheckpointError> {
        if let Self::Leased(l) = self {
            return l.write(checkpoint).await;
        }
        let bytes = codec::encode(checkpoint);
        let meta = &checkpoint.meta;
        let pointer = Pointer::to(meta, object_name(meta.id), bytes.len() as u64);
        let pointer_bytes = serde_json::to_vec_pretty(&pointer).unwrap_or_default();
        match self {
            Self::Dir(d) => {
                d.write_atomic(&pointer.object, &bytes)?;
                d.write_atomic(POINTER, &pointer_bytes)?;
                d.prune(meta.id)?;
            }
            Self::S3(s) => {
                let location = format!("s3://{}/{}", s.bucket.name(), s.prefix);
                s.bucket
                    .put(&s.key(&pointer.object), bytes, "application/octet-stream", Condition::Always)
                    .await?;
                let condition = match &s.pointer_etag {
                    Some(etag) => Condition::Matches(etag),
                    None => Condition::Absent,
                };
                let etag =
                    match s.bucket.put(&s.key(POINTER), pointer_bytes, "application/json", condition).await {
                        Ok(etag) => etag,
                        Err(S3Error::PreconditionFailed { .. }) => {
                            return Err(CheckpointError::Fenced { location, id: s.last_id });
                        }
                        Err(e) => return Err(e.into()),
                    };
                s.pointer_etag = Some(etag);
                s.last_id = meta.id;
                s.prune(meta.id).await?;
            }
            Self::Leased(_) => {}
        }
        Ok(pointer)
    }
}

/// A checkpoint directory, locked for this process.
pub struct DirStore {
    path: PathBuf,
    /// Held open: the lock lasts as long as the file.
    _lock: File,
}

impl DirStore {
    fn io(&self, action: &'static str, name: &str, source: std::io::Error) -> CheckpointError {
        CheckpointError::Io { action, path: self.path.join(name).display().to_string(), source }
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, CheckpointError> {
        std::fs::read(self.path.join(name)).map_err(|e| self.io("read", name, e))
    }

    fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<(), CheckpointError> {
        write_atomic(&self.path, name, bytes)
    }

    fn prune(&self, newest: u64) -> Result<(), CheckpointError> {
        let entries = std::fs::read_dir(self.path.join(FOLDER)).map_err(|e| self.io("list", FOLDER, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            if let Some(id) = name.to_str().and_then(id_of)
                && id + KEEP <= newest
            {
                std::fs::remove_file(entry.path()).map_err(|e| self.io("delete", FOLDER, e))?;
            }
        }
        Ok(())
    }
}

/// Checkpoints under an S3 prefix.
pub struct S3Store {
    bucket: Bucket,
    prefix: String,
    /// The pointer's ETag as this process last read or wrote it (None: there was none).
    pointer_etag: Option<String>,
    last_id: u64,
}

impl S3Store {
    fn key(&self, name: &str) -> String {
        key(&self.prefix, name)
    }

    async fn prune(&self, newest: u64) -> Result<(), CheckpointError> {
        for key in self.bucket.list(&self.key(FOLDER)).await? {
            if id_of(&key).is_some_and(|id| id + KEEP <= newest) {
                self.bucket.delete(&key).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(id: u64) -> Checkpoint {
        let mut c = weir_checkpoint::sample();
        c.meta.id = id;
        c
    }

    #[tokio::test]
    async fn a_directory_keeps_the_last_three_and_points_at_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = CheckpointStore::dir(dir.path()).unwrap();
        assert_eq!(store.latest().await.unwrap(), None);
        for id in 1..=5 {
            let pointer = store.write(&checkpoint(id)).await.unwrap();
            assert_eq!(pointer.id, id);
        }
        assert_eq!(store.latest().await.unwrap(), Some(checkpoint(5)));
        let mut kept: Vec<String> = std::fs::read_dir(dir.path().join(FOLDER))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        kept.sort();
        assert_eq!(
            kept,
            [object_name(3), object_name(4), object_name(5)].map(|n| n[FOLDER.len() + 1..].to_string())
        );
    }

    #[test]
    fn a_second_process_is_refused_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let _first = CheckpointStore::dir(dir.path()).unwrap();
        let second = CheckpointStore::dir(dir.path());
        assert!(matches!(second, Err(CheckpointError::Locked { .. })), "{:?}", second.err());
    }

    #[tokio::test]
    async fn a_damaged_checkpoint_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = CheckpointStore::dir(dir.path()).unwrap();
        store.write(&checkpoint(1)).await.unwrap();
        let file = dir.path().join(object_name(1));
        let mut bytes = std::fs::read(&file).unwrap();
        bytes.truncate(bytes.len() / 2);
        std::fs::write(&file, bytes).unwrap();
        let error = store.latest().await.unwrap_err().to_string();
        assert!(error.contains(&object_name(1)) && error.contains("cut short"), "{error}");
    }
}
