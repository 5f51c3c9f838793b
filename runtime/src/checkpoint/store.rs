//! Where checkpoints live. [`CheckpointStore`] is what the pipeline's checkpoint writer needs of
//! any store: where it is, the number the next checkpoint takes, and writing one. Two stores
//! implement it: [`PointerStore`] here, one process's checkpoints in a directory or under
//! `s3://BUCKET/PREFIX`, and a lease group worker's checkpoints recorded in its leases
//! (`crate::lease::checkpoints`). A [`PointerStore`] has the same layout in both places:
//!
//! ```text
//! LOCATION/checkpoints/00000000000000000007.ckpt   one object per checkpoint (codec.rs)
//! LOCATION/LATEST                                  JSON pointer to the newest complete one
//! ```
//!
//! A checkpoint's object is written first, then the pointer; a reader follows the pointer, so
//! it only ever sees complete checkpoints. Each object is written whole or not at all
//! ([`crate::objects`]). The pointer is replaced only with a conditional write on the tag this
//! process last saw, so a stale process (paused, partitioned, or simply a second one) cannot
//! overwrite a newer checkpoint: it gets [`CheckpointError::Fenced`] and stops. A directory is
//! also held with a lock (`LOCK`), so a second process on the machine is refused at start. The
//! last [`KEEP`] checkpoints are kept; older ones are deleted only after the pointer moved past
//! them.
//!
//! Object requests are retried by weir's one mechanism (`weir_aws::retry`), not by the SDK: by
//! the pipeline's checkpoint writer, and here for the reads at start ([`Policy::READ`]).

use std::fs::File;
use std::path::Path;

use weir_aws::{Policy, Service};

use super::pointer::{Pointer, this_writer};
use super::{Checkpoint, CheckpointError, KEEP, codec};
use crate::objects::{Condition, ObjectError, Objects};

/// Attempts at taking the pointer over while the previous writer keeps moving it.
pub const CLAIM_ATTEMPTS: u32 = 5;
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

/// What the pipeline's checkpoint writer needs of a store.
#[async_trait::async_trait]
pub trait CheckpointStore: Send {
    /// Where it is, for messages.
    fn location(&self) -> String;

    /// The number the next checkpoint written here must have at least: names and pointers are
    /// made of it, so it never goes back, even for a run (or a lease term) that restored
    /// nothing.
    fn next_id(&self) -> u64;

    /// Write `checkpoint` and make it the one a restart goes on from; returns what was written.
    async fn write(&mut self, checkpoint: &Checkpoint) -> Result<Pointer, CheckpointError>;
}

/// One process's checkpoints in a directory or under an S3 prefix, the newest named by the
/// pointer `LATEST`.
pub struct PointerStore {
    objects: Objects,
    /// A directory's lock, held open: the lock lasts as long as the file.
    _lock: Option<File>,
    /// The pointer's tag as this process last read or wrote it (None: there was none).
    pointer_tag: Option<String>,
    last_id: u64,
}

impl PointerStore {
    /// `DIR`, created if missing, and locked against a second process.
    pub fn dir(path: &Path) -> Result<Self, CheckpointError> {
        let io = |action, source| ObjectError::Io { action, path: path.display().to_string(), source };
        std::fs::create_dir_all(path.join(FOLDER)).map_err(|e| io("create", e))?;
        let lock = File::create(path.join("LOCK")).map_err(|e| io("create a lock in", e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(CheckpointError::Locked { dir: path.display().to_string() });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io("lock", e).into()),
        }
        Ok(Self {
            objects: Objects::Dir(path.to_path_buf()),
            _lock: Some(lock),
            pointer_tag: None,
            last_id: 0,
        })
    }

    /// `s3://BUCKET/PREFIX`; makes no request.
    pub async fn s3(bucket: &str, prefix: &str, region: Option<&str>) -> Self {
        Self {
            objects: Objects::s3(bucket, prefix, region).await,
            _lock: None,
            pointer_tag: None,
            last_id: 0,
        }
    }

    /// The newest complete checkpoint, if any; transient S3 failures are retried
    /// ([`Policy::READ`]).
    pub async fn latest(&mut self) -> Result<Option<Checkpoint>, CheckpointError> {
        let what = format!("read the checkpoints at {}", self.location());
        let (_, latest) =
            weir_aws::retry_with(Service::S3, Policy::READ, what, self, Self::attempt_latest).await;
        latest
    }

    async fn attempt_latest(&mut self) -> (&mut Self, Result<Option<Checkpoint>, CheckpointError>) {
        let latest = self.read_latest().await;
        (self, latest)
    }

    async fn read_latest(&mut self) -> Result<Option<Checkpoint>, CheckpointError> {
        let Some(pointer) = self.claim().await? else { return Ok(None) };
        let bytes = self.objects.read(&pointer.object).await?;
        let object = self.objects.describe(&pointer.object);
        let checkpoint =
            codec::decode(&bytes).map_err(|reason| CheckpointError::Corrupt { object, reason })?;
        self.last_id = pointer.id;
        Ok(Some(checkpoint))
    }

    /// The pointer, taken over from any process that was writing here before: it is written
    /// again unchanged (but for its writer) with a conditional write on the tag just read, so
    /// that the previous writer's next write fails ([`CheckpointError::Fenced`]) and this one,
    /// the newest, carries on. Tried again while the previous writer keeps moving it.
    async fn claim(&mut self) -> Result<Option<Pointer>, CheckpointError> {
        for _ in 0..CLAIM_ATTEMPTS {
            let Some(found) = self.pointer().await? else { return Ok(None) };
            let Some(tag) = self.pointer_tag.clone() else { return Ok(None) };
            let claimed = Pointer { writer: this_writer(), ..found.clone() };
            let bytes = serde_json::to_vec_pretty(&claimed).unwrap_or_default();
            match self.objects.put(POINTER, bytes, "application/json", Condition::Matches(&tag)).await {
                Ok(tag) => {
                    self.pointer_tag = Some(tag);
                    return Ok(Some(found));
                }
                Err(ObjectError::Changed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(CheckpointError::Fenced { location: self.location(), id: 0 })
    }

    /// The pointer, if any (and remember its tag for the next write).
    pub async fn pointer(&mut self) -> Result<Option<Pointer>, CheckpointError> {
        let Some((bytes, tag)) = self.objects.get(POINTER).await? else { return Ok(None) };
        self.pointer_tag = Some(tag);
        serde_json::from_slice(&bytes).map(Some).map_err(|e| CheckpointError::Corrupt {
            object: self.objects.describe(POINTER),
            reason: e.to_string(),
        })
    }

    /// Delete the checkpoints older than the last [`KEEP`] up to `newest`.
    async fn prune(&self, newest: u64) -> Result<(), CheckpointError> {
        for name in self.objects.list(FOLDER).await? {
            if id_of(&name).is_some_and(|id| id + KEEP <= newest) {
                self.objects.delete(&name).await?;
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl CheckpointStore for PointerStore {
    fn location(&self) -> String {
        self.objects.location()
    }

    fn next_id(&self) -> u64 {
        self.last_id + 1
    }

    /// Write `checkpoint`, then point at it, then delete checkpoints older than the last
    /// [`KEEP`].
    async fn write(&mut self, checkpoint: &Checkpoint) -> Result<Pointer, CheckpointError> {
        let bytes = codec::encode(checkpoint);
        let meta = &checkpoint.meta;
        let pointer = Pointer::to(meta, object_name(meta.id), bytes.len() as u64);
        let pointer_bytes = serde_json::to_vec_pretty(&pointer).unwrap_or_default();
        self.objects.put(&pointer.object, bytes, "application/octet-stream", Condition::Always).await?;
        let condition = match &self.pointer_tag {
            Some(tag) => Condition::Matches(tag),
            None => Condition::Absent,
        };
        let tag = match self.objects.put(POINTER, pointer_bytes, "application/json", condition).await {
            Ok(tag) => tag,
            Err(ObjectError::Changed { .. }) => {
                return Err(CheckpointError::Fenced { location: self.location(), id: self.last_id });
            }
            Err(e) => return Err(e.into()),
        };
        self.pointer_tag = Some(tag);
        self.last_id = meta.id;
        self.prune(meta.id).await?;
        Ok(pointer)
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
        let mut store = PointerStore::dir(dir.path()).unwrap();
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
        let _first = PointerStore::dir(dir.path()).unwrap();
        let second = PointerStore::dir(dir.path());
        assert!(matches!(second, Err(CheckpointError::Locked { .. })), "{:?}", second.err());
    }

    #[tokio::test]
    async fn a_damaged_checkpoint_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = PointerStore::dir(dir.path()).unwrap();
        store.write(&checkpoint(1)).await.unwrap();
        let file = dir.path().join(object_name(1));
        let mut bytes = std::fs::read(&file).unwrap();
        bytes.truncate(bytes.len() / 2);
        std::fs::write(&file, bytes).unwrap();
        let error = store.latest().await.unwrap_err().to_string();
        assert!(error.contains(&object_name(1)) && error.contains("cut short"), "{error}");
    }
}
