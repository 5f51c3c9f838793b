//! Checkpoints of a worker in a lease group (`weir run --lease-table`): each worker writes its
//! own objects, and each lease names the object that holds its shard.
//!
//! ```text
//! LOCATION/workers/<worker>/<process start>-<id>.ckpt   a cut of every shard the worker reads
//! lease row of each shard                               -> that object, position, time
//! ```
//!
//! An object is written first, then every lease it covers is pointed at it with a write
//! conditioned on the worker still holding the lease with the counter it took it with: a
//! worker that lost a lease (paused, partitioned) cannot move the new owner's checkpoint
//! ([`CheckpointError::LeaseLost`]). A shard the cut says was read to its end is reported to
//! the coordinator, which gives its lease up for good after the term's final checkpoint.
//!
//! A new owner reads the objects its leases name ([`restore`]): each shard's position, and of
//! the state only the keys whose Kinesis hash key (the MD5 of the key) falls in the shard's
//! hash range. A child shard, which has no checkpoint yet, takes the keys of its range from
//! its parents' final checkpoints. This needs the partition key of every record to be its
//! grouping key (what `builtin:rekey` produces).
//!
//! Object names carry the start time of the process, so that a worker restarted under the same
//! `--worker-id` never overwrites an object a lease still names, and the checkpoint's number,
//! which grows over all of the process's terms (a term that restores nothing goes on from the
//! last number written, not from 1). A worker deletes an object of
//! its own once three newer ones exist and the lease loop's scan of the table (begun after the
//! object was recorded) found no lease naming it: a lease given up still names its last one
//! until its new owner checkpoints, and a finished shard's names its final state for as long
//! as its children may need it.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

use weir_aws::Transient;
use weir_kinesis::{Resume, StartPosition};

use super::{Coordinator, Lease};
use crate::checkpoint::{
    Checkpoint, CheckpointError, CheckpointStore, KEEP, Meta, OperatorRef, Pointer, codec,
};
use crate::objects::{Condition, Objects};

/// A worker's checkpoints, recorded in its leases. Clones share the list of objects written.
#[derive(Clone)]
pub struct LeasedStore {
    objects: Objects,
    coordinator: Arc<Coordinator>,
    /// The process's start (milliseconds since the epoch), in every object name.
    started_ms: i64,
    /// Objects written and recorded, oldest first, with when their recording ended.
    written: Arc<Mutex<VecDeque<(String, Instant)>>>,
    /// The number of the last checkpoint written, over every term: object names carry it, so
    /// a term must never number its checkpoints from 1 again (that overwrote an object a
    /// finished shard's lease still named, and its children started without its keys).
    last_id: Arc<AtomicU64>,
}

impl LeasedStore {
    /// Checkpoints to `objects`, recorded in the leases `coordinator` holds.
    pub fn new(objects: Objects, coordinator: Arc<Coordinator>) -> Self {
        let started_ms = jiff::Timestamp::now().as_millisecond();
        Self { objects, coordinator, started_ms, written: Arc::default(), last_id: Arc::default() }
    }
}

#[async_trait::async_trait]
impl CheckpointStore for LeasedStore {
    fn location(&self) -> String {
        self.objects.location()
    }

    /// One more than any checkpoint this process wrote, in any term.
    fn next_id(&self) -> u64 {
        self.last_id.load(Ordering::Relaxed) + 1
    }

    /// Write `checkpoint`'s object, point each lease it covers at it, report shards read to
    /// their end, and delete old objects.
    async fn write(&mut self, checkpoint: &Checkpoint) -> Result<Pointer, CheckpointError> {
        let meta = &checkpoint.meta;
        let worker = self.coordinator.worker().to_string();
        let name = format!("workers/{worker}/{}-{:012}.ckpt", self.started_ms, meta.id);
        let bytes = codec::encode(checkpoint);
        let size = bytes.len() as u64;
        self.objects.put(&name, bytes, "application/octet-stream", Condition::Always).await?;
        self.last_id.fetch_max(meta.id, Ordering::Relaxed);
        let table = &self.coordinator.table;
        let mut lost = None;
        for (shard, progress) in &meta.shards {
            let Some(counter) = self.coordinator.counter(shard) else { continue };
            let recorded = table
                .record_checkpoint(
                    shard,
                    &worker,
                    counter,
                    &name,
                    progress.after.as_deref(),
                    progress.event_time_ms,
                    meta.taken_at,
                )
                .await
                .map_err(|e| {
                    let transient = e.is_transient();
                    CheckpointError::Record { id: meta.id, source: Box::new(e), transient }
                })?;
            if !recorded {
                // The others are still recorded: the term ends, and they go on from here.
                self.coordinator.lost(shard);
                lost.get_or_insert_with(|| shard.clone());
                continue;
            }
            tracing::debug!("shard {shard} (lease {counter}) at {:?}: checkpoint {name}", progress.after);
            if progress.finished {
                self.coordinator.shard_ended(shard);
            }
        }
        if let Some(shard) = lost {
            return Err(CheckpointError::LeaseLost { shard, table: table.name().to_string() });
        }
        let expired: Vec<String> = {
            let mut written = self.written.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            written.push_back((name.clone(), Instant::now()));
            let older = written.len().saturating_sub(KEEP as usize);
            let mut expired = Vec::new();
            let mut kept = VecDeque::with_capacity(written.len());
            for (index, (old, recorded)) in written.drain(..).enumerate() {
                if index < older && self.coordinator.unnamed(&old, recorded) {
                    expired.push(old);
                } else {
                    kept.push_back((old, recorded));
                }
            }
            *written = kept;
            expired
        };
        for old in expired {
            self.objects.delete(&old).await?;
        }
        Ok(Pointer::to(meta, name, size))
    }
}

/// What a term of a lease group goes on from.
#[derive(Debug, Default)]
pub struct Restored {
    /// Positions and state of the term's shards (None: nothing was ever checkpointed for them).
    pub checkpoint: Option<Checkpoint>,
    /// Where each shard is read from (shards absent start at `--start-position`).
    pub resume: BTreeMap<String, Resume>,
}

/// The checkpoint of a term reading `term`'s shards (`rows`: every lease as read now, for the
/// checkpoints they name and the parents),
/// with `next_id` the worker's next checkpoint number: each shard's position from the object
/// its lease names, and of the state the keys in its hash range; a child never checkpointed
/// starts at its beginning with the keys of its range from its parents' objects.
pub async fn restore(
    objects: &Objects,
    term: &[Lease],
    rows: &[Lease],
    source: &str,
    operator: OperatorRef,
    next_id: u64,
) -> Result<Restored, CheckpointError> {
    let by_shard: BTreeMap<&str, &Lease> = rows.iter().map(|l| (l.shard.as_str(), l)).collect();
    let mut read: BTreeMap<String, Checkpoint> = BTreeMap::new();
    let mut restored = Restored::default();
    // Which object each part of the state comes from, with the hash range it is cut to.
    let mut parts: Vec<(String, weir_kinesis::HashRange)> = Vec::new();
    let mut shards = BTreeMap::new();
    for held in term {
        // The row as it is now: the checkpoint it names moved since the lease was taken.
        let lease = by_shard.get(held.shard.as_str()).copied().unwrap_or(held);
        match &lease.checkpoint {
            Some(object) => {
                if !read.contains_key(object) {
                    read.insert(object.clone(), read_checkpoint(objects, object).await?);
                }
                tracing::debug!("shard {} goes on from {object}", lease.shard);
                if let Some(progress) = read.get(object).and_then(|c| c.meta.shards.get(&lease.shard)) {
                    shards.insert(lease.shard.clone(), progress.clone());
                }
                parts.push((object.clone(), lease.hash_range));
            }
            None if !lease.parents.is_empty() => {
                restored.resume.insert(lease.shard.clone(), Resume::From(StartPosition::TrimHorizon));
                for parent in &lease.parents {
                    let Some(object) = by_shard.get(parent.as_str()).and_then(|p| p.checkpoint.clone())
                    else {
                        continue;
                    };
                    if !read.contains_key(&object) {
                        read.insert(object.clone(), read_checkpoint(objects, &object).await?);
                    }
                    parts.push((object, lease.hash_range));
                }
            }
            None => {}
        }
    }
    if read.is_empty() {
        return Ok(restored);
    }
    restored.resume.extend(crate::checkpoint::resume_positions(&shards));
    // Each key once: the same object can be named twice with the same range (a merge whose
    // parents one worker read), and the first part holding a key wins.
    let mut state = weir_contract::KeyedStates::default();
    let mut taken: HashSet<&str> = HashSet::new();
    for (object, range) in &parts {
        let Some(checkpoint) = read.get(object) else { continue };
        for entry in checkpoint.state.iter() {
            if !entry.is_instance_wide()
                && range.contains(weir_kinesis::shards::hash_key(entry.key))
                && taken.insert(entry.key)
            {
                state.push_entry(entry);
            }
        }
    }
    // Instance-wide entries (an operator's own watermark, say) from one object only, the one
    // furthest behind: the objects are cuts of workers at different points in event time, and
    // combining their instance state as instances of one process do (the latest watermark, for
    // sliding-window-max) would carry a shard read by a worker further behind past windows it
    // has not read yet.
    // A shard joins at its own clock, never at a watermark it has not reached: one with no
    // position of its own (new, or a child), or whose clock is behind that watermark (a
    // checkpoint written before clocks were recorded whole), may hold records older than it.
    // The term then starts with no watermark at all, and each key's own record of what it
    // fired keeps the fired windows from firing again (a record that comes after some of them
    // is reported as partly late).
    let reached = |watermark_ms: i64| {
        term.iter().all(|l| {
            shards.get(&l.shard).is_some_and(|p| {
                p.finished || p.event_time_ms.unwrap_or(weir_contract::NO_WATERMARK) >= watermark_ms
            })
        })
    };
    let behind = read.values().min_by_key(|c| c.meta.watermark_ms).filter(|c| reached(c.meta.watermark_ms));
    if let Some(behind) = behind {
        behind.state.iter().filter(|e| e.is_instance_wide()).for_each(|e| state.push_entry(e));
    }
    let watermark_ms = match behind {
        Some(behind) => behind.meta.watermark_ms,
        None => weir_contract::NO_WATERMARK,
    };
    let written_by = read.values().next().map(|c| c.meta.operator.clone()).unwrap_or(operator);
    let grouping = written_by.grouping.clone();
    if let Some(other) = read.values().find(|c| c.meta.operator.grouping != grouping) {
        return Err(CheckpointError::Corrupt {
            object: format!("{}/{}", objects.location(), other.meta.id),
            reason: format!(
                "holds state grouped by {}, the others by {grouping}",
                other.meta.operator.grouping
            ),
        });
    }
    let meta = Meta {
        id: next_id.saturating_sub(1),
        taken_at: jiff::Timestamp::now(),
        source: source.to_string(),
        operator: written_by,
        parallelism: 1,
        shards,
        watermark_ms,
        records_out: 0,
    };
    restored.checkpoint = Some(Checkpoint { meta, state });
    Ok(restored)
}

/// The checkpoint in object `name`.
async fn read_checkpoint(objects: &Objects, name: &str) -> Result<Checkpoint, CheckpointError> {
    let bytes = objects.read(name).await?;
    codec::decode(&bytes)
        .map_err(|reason| CheckpointError::Corrupt { object: objects.describe(name), reason })
}
