//! What the lease loop needs of a lease table, as a trait: the group row (join, renew, expel,
//! leave, the change count) and the lease rows (list, add, take, record a checkpoint,
//! release), every write conditional as DynamoDB's are. Two implementations: [`LeaseTable`]
//! (DynamoDB, what workers use) and [`MemoryLeases`] (one process's memory, with the same
//! conditions: the coordinator's unit tests, under tokio's paused clock).

use std::collections::BTreeMap;
use std::sync::Mutex;

use weir_kinesis::ShardInfo;

use super::{Group, Lease, LeaseError, LeaseTable, Member};

/// A lease table.
#[async_trait::async_trait]
pub trait LeaseStore: Send + Sync {
    /// Its name, for messages.
    fn name(&self) -> &str;
    /// Make sure it exists and serves `source` with checkpoints at `checkpoints` (another
    /// job's table is refused).
    async fn open(&self, source: &str, checkpoints: &str) -> Result<Group, LeaseError>;
    /// The group row, read consistently.
    async fn group(&self) -> Result<Group, LeaseError>;
    /// Bump the change count: every worker scans the leases again.
    async fn bump(&self) -> Result<(), LeaseError>;
    /// Join as `worker` with `heartbeat` (or renew a membership someone removed).
    async fn join(&self, worker: &str, heartbeat: u64) -> Result<(), LeaseError>;
    /// Renew every lease of `worker`; false when it is no longer a member.
    async fn renew(&self, worker: &str, heartbeat: u64) -> Result<bool, LeaseError>;
    /// Remove `worker` if its heartbeat is still `heartbeat`; true when this call removed it.
    async fn expel(&self, worker: &str, heartbeat: u64) -> Result<bool, LeaseError>;
    /// Leave the group.
    async fn leave(&self, worker: &str) -> Result<(), LeaseError>;
    /// Every lease, read consistently, by shard id.
    async fn leases(&self) -> Result<Vec<Lease>, LeaseError>;
    /// Add a row for each of `shards` not there yet; how many were added.
    async fn add(&self, shards: &[ShardInfo]) -> Result<usize, LeaseError>;
    /// Take `lease` for `worker` if nobody changed it since it was read: the new counter.
    async fn take(&self, lease: &Lease, worker: &str) -> Result<Option<u64>, LeaseError>;
    /// Record `shard`'s checkpoint if `worker` still holds it with `counter`.
    #[allow(clippy::too_many_arguments)]
    async fn record_checkpoint(
        &self,
        shard: &str,
        worker: &str,
        counter: u64,
        object: &str,
        position: Option<&str>,
        event_time_ms: Option<i64>,
        at: jiff::Timestamp,
    ) -> Result<bool, LeaseError>;
    /// Give `shard` up (`finished`: for good) if `worker` still holds it with `counter`.
    async fn release(
        &self,
        shard: &str,
        worker: &str,
        counter: u64,
        finished: bool,
    ) -> Result<bool, LeaseError>;
}

#[async_trait::async_trait]
impl LeaseStore for LeaseTable {
    fn name(&self) -> &str {
        LeaseTable::name(self)
    }
    async fn open(&self, source: &str, checkpoints: &str) -> Result<Group, LeaseError> {
        LeaseTable::open(self, source, checkpoints).await
    }
    async fn group(&self) -> Result<Group, LeaseError> {
        LeaseTable::group(self).await
    }
    async fn bump(&self) -> Result<(), LeaseError> {
        LeaseTable::bump(self).await
    }
    async fn join(&self, worker: &str, heartbeat: u64) -> Result<(), LeaseError> {
        LeaseTable::join(self, worker, heartbeat).await
    }
    async fn renew(&self, worker: &str, heartbeat: u64) -> Result<bool, LeaseError> {
        LeaseTable::renew(self, worker, heartbeat).await
    }
    async fn expel(&self, worker: &str, heartbeat: u64) -> Result<bool, LeaseError> {
        LeaseTable::expel(self, worker, heartbeat).await
    }
    async fn leave(&self, worker: &str) -> Result<(), LeaseError> {
        LeaseTable::leave(self, worker).await
    }
    async fn leases(&self) -> Result<Vec<Lease>, LeaseError> {
        LeaseTable::leases(self).await
    }
    async fn add(&self, shards: &[ShardInfo]) -> Result<usize, LeaseError> {
        LeaseTable::add(self, shards).await
    }
    async fn take(&self, lease: &Lease, worker: &str) -> Result<Option<u64>, LeaseError> {
        LeaseTable::take(self, lease, worker).await
    }
    async fn record_checkpoint(
        &self,
        shard: &str,
        worker: &str,
        counter: u64,
        object: &str,
        position: Option<&str>,
        event_time_ms: Option<i64>,
        at: jiff::Timestamp,
    ) -> Result<bool, LeaseError> {
        LeaseTable::record_checkpoint(self, shard, worker, counter, object, position, event_time_ms, at).await
    }
    async fn release(
        &self,
        shard: &str,
        worker: &str,
        counter: u64,
        finished: bool,
    ) -> Result<bool, LeaseError> {
        LeaseTable::release(self, shard, worker, counter, finished).await
    }
}

/// A lease table in memory, with DynamoDB's conditions.
#[derive(Debug, Default)]
pub struct MemoryLeases {
    name: String,
    state: Mutex<Memory>,
}

#[derive(Debug, Default)]
struct Memory {
    group: Option<Group>,
    leases: BTreeMap<String, Lease>,
}

impl MemoryLeases {
    /// An empty table called `name`.
    pub fn new(name: &str) -> Self {
        Self { name: name.to_string(), state: Mutex::default() }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Memory) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    fn missing(&self) -> LeaseError {
        LeaseError::NoTable { table: self.name.clone(), endpoint: "memory".to_string() }
    }

    fn group_mut<'a>(&self, memory: &'a mut Memory) -> Result<&'a mut Group, LeaseError> {
        memory.group.as_mut().ok_or_else(|| self.missing())
    }
}

/// Whether `worker` holds `lease` with `counter`.
fn held_by(lease: &Lease, worker: &str, counter: u64) -> bool {
    lease.owner.as_deref() == Some(worker) && lease.counter == counter
}

#[async_trait::async_trait]
impl LeaseStore for MemoryLeases {
    fn name(&self) -> &str {
        &self.name
    }

    async fn open(&self, source: &str, checkpoints: &str) -> Result<Group, LeaseError> {
        self.with(|m| {
            let group = m.group.get_or_insert_with(|| Group {
                source: source.to_string(),
                checkpoints: checkpoints.to_string(),
                ..Group::default()
            });
            if group.source != source || group.checkpoints != checkpoints {
                return Err(LeaseError::OtherJob {
                    table: self.name.clone(),
                    stream: group.source.clone(),
                    checkpoints: group.checkpoints.clone(),
                    wanted_stream: source.to_string(),
                    wanted_checkpoints: checkpoints.to_string(),
                });
            }
            Ok(group.clone())
        })
    }

    async fn group(&self) -> Result<Group, LeaseError> {
        self.with(|m| self.group_mut(m).cloned())
    }

    async fn bump(&self) -> Result<(), LeaseError> {
        self.with(|m| self.group_mut(m).map(|g| g.changes += 1))
    }

    async fn join(&self, worker: &str, heartbeat: u64) -> Result<(), LeaseError> {
        self.with(|m| {
            let group = self.group_mut(m)?;
            let renewed_at = jiff::Timestamp::now().to_string();
            group.workers.insert(worker.to_string(), Member { heartbeat, renewed_at });
            group.changes += 1;
            Ok(())
        })
    }

    async fn renew(&self, worker: &str, heartbeat: u64) -> Result<bool, LeaseError> {
        self.with(|m| {
            let Some(member) = self.group_mut(m)?.workers.get_mut(worker) else { return Ok(false) };
            member.heartbeat = heartbeat;
            member.renewed_at = jiff::Timestamp::now().to_string();
            Ok(true)
        })
    }

    async fn expel(&self, worker: &str, heartbeat: u64) -> Result<bool, LeaseError> {
        self.with(|m| {
            let group = self.group_mut(m)?;
            if group.workers.get(worker).is_none_or(|member| member.heartbeat != heartbeat) {
                return Ok(false);
            }
            group.workers.remove(worker);
            group.changes += 1;
            Ok(true)
        })
    }

    async fn leave(&self, worker: &str) -> Result<(), LeaseError> {
        self.with(|m| {
            let group = self.group_mut(m)?;
            group.workers.remove(worker);
            group.changes += 1;
            Ok(())
        })
    }

    async fn leases(&self) -> Result<Vec<Lease>, LeaseError> {
        self.with(|m| Ok(m.leases.values().cloned().collect()))
    }

    async fn add(&self, shards: &[ShardInfo]) -> Result<usize, LeaseError> {
        self.with(|m| {
            let mut added = 0;
            for shard in shards {
                if m.leases.contains_key(&shard.id) {
                    continue;
                }
                let lease = Lease {
                    shard: shard.id.clone(),
                    owner: None,
                    counter: 0,
                    finished: false,
                    parents: shard.parents.clone(),
                    hash_range: shard.hash_range,
                    checkpoint: None,
                    position: None,
                    checkpoint_at: None,
                    event_time_ms: None,
                };
                m.leases.insert(shard.id.clone(), lease);
                added += 1;
            }
            Ok(added)
        })
    }

    async fn take(&self, lease: &Lease, worker: &str) -> Result<Option<u64>, LeaseError> {
        self.with(|m| {
            let Some(row) = m.leases.get_mut(&lease.shard) else { return Ok(None) };
            if row.counter != lease.counter || row.finished || row.owner != lease.owner {
                return Ok(None);
            }
            row.owner = Some(worker.to_string());
            row.counter += 1;
            Ok(Some(row.counter))
        })
    }

    async fn record_checkpoint(
        &self,
        shard: &str,
        worker: &str,
        counter: u64,
        object: &str,
        position: Option<&str>,
        event_time_ms: Option<i64>,
        at: jiff::Timestamp,
    ) -> Result<bool, LeaseError> {
        self.with(|m| {
            let Some(row) = m.leases.get_mut(shard).filter(|row| held_by(row, worker, counter)) else {
                return Ok(false);
            };
            row.checkpoint = Some(object.to_string());
            row.checkpoint_at = Some(at.to_string());
            if let Some(position) = position {
                row.position = Some(position.to_string());
            }
            if let Some(t) = event_time_ms {
                row.event_time_ms = Some(t);
            }
            Ok(true)
        })
    }

    async fn release(
        &self,
        shard: &str,
        worker: &str,
        counter: u64,
        finished: bool,
    ) -> Result<bool, LeaseError> {
        self.with(|m| {
            let Some(row) = m.leases.get_mut(shard).filter(|row| held_by(row, worker, counter)) else {
                return Ok(false);
            };
            row.owner = None;
            row.finished = finished;
            Ok(true)
        })
    }
}
