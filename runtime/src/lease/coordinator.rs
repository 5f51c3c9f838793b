//! The loop each worker runs beside its pipeline.
//!
//! Every `poll` (500 ms) it reads the group row; every failover time / 3, on a task of its
//! own, it renews (one write for all its leases, which also moves the [`WriteDeadline`]). A worker whose heartbeat has not
//! changed for the failover time, by this worker's clock, is removed from the group, which
//! frees its leases for the others. Whenever the group row's change count moves (a lease
//! freed, a worker joined or left), and every `rescan` besides, it reads every lease,
//! notices leases it lost, and follows the [`balance`](super::balance) plan: takes free leases
//! with conditional writes, or marks some of its own to give up. Every `discovery` (and after
//! a shard ends) it lists the stream's shards and adds rows for new ones.
//!
//! The pipeline runs in terms over a fixed set of shards. When the set must change (a lease
//! taken, lost or to give up, a shard read to its end) the coordinator bumps its generation;
//! the term stops gracefully (a final checkpoint recorded for each lease), then
//! [`Coordinator::after_term`] releases what was to go, and the next term starts from the
//! leases held.

mod rounds;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::{Notify, watch};
use weir_kinesis::{Kinesis, Stream};

use super::{Lease, LeaseError, LeaseState, LeaseStore};
use crate::metrics::LeaseMetrics;
use crate::sink::WriteDeadline;

/// How a worker takes part.
#[derive(Clone, Debug)]
pub struct CoordinatorOptions {
    /// This worker's id in the table (unique per process).
    pub worker: String,
    /// How long a worker may go without renewing before the others take its leases.
    pub failover: Duration,
    /// How often the group row is read.
    pub poll: Duration,
    /// How often every lease is read even when nothing announced a change (a safety net:
    /// every change that matters bumps the group row's count).
    pub rescan: Duration,
    /// How often the stream's shards are listed for new ones.
    pub discovery: Duration,
}

impl CoordinatorOptions {
    /// The defaults for `worker` with `failover`.
    pub fn new(worker: String, failover: Duration) -> Self {
        Self {
            worker,
            failover,
            poll: Duration::from_millis(500).min(failover / 10),
            rescan: Duration::from_secs(300),
            discovery: Duration::from_secs(60),
        }
    }
}

/// The leases this worker holds, as it took them.
#[derive(Clone, Debug, Default)]
struct Held {
    /// By shard, with the counter this worker holds each with.
    leases: BTreeMap<String, Lease>,
    /// Held until the current term's final checkpoint, then given up (rebalance).
    shedding: BTreeSet<String>,
    /// Read to their end: given up for good after the current term's final checkpoint.
    ended: BTreeSet<String>,
}

/// One worker's part in the group, shared by the lease loop, the checkpoint store (which
/// records checkpoints in the leases) and the term loop of `weir run`.
pub struct Coordinator {
    /// The table.
    pub table: Arc<dyn LeaseStore>,
    /// The deadline of this worker's writes.
    pub deadline: WriteDeadline,
    options: CoordinatorOptions,
    held: Mutex<Held>,
    generation: watch::Sender<u64>,
    wake: Notify,
    stopping: AtomicBool,
    metrics: LeaseMetrics,
    /// Where new shards are found (None: rows are added by someone else, as in the simulation).
    stream: Option<(Kinesis, Stream)>,
    /// The checkpoint objects the rows named at the last scan, and when it began.
    named: Mutex<Option<(Instant, HashSet<String>)>>,
}

impl Coordinator {
    /// Join the group of `table`, add rows for the stream's shards, and take a first share of
    /// leases. The table must be open ([`LeaseTable::open`]). Without a stream, rows are added
    /// by the caller.
    pub async fn start(
        table: Arc<dyn LeaseStore>,
        stream: Option<(Kinesis, Stream)>,
        options: CoordinatorOptions,
        metrics: LeaseMetrics,
    ) -> Result<Arc<Self>, LeaseError> {
        let coordinator = Arc::new(Self {
            table,
            deadline: WriteDeadline::default(),
            options,
            held: Mutex::default(),
            generation: watch::Sender::new(0),
            wake: Notify::new(),
            stopping: AtomicBool::new(false),
            metrics,
            stream,
            named: Mutex::default(),
        });
        let sent = Instant::now();
        coordinator.table.join(&coordinator.options.worker, 1).await?;
        coordinator.deadline.renewed(sent, coordinator.options.failover);
        coordinator.discover().await?;
        Ok(coordinator)
    }

    /// This worker's lease counters.
    pub fn metrics(&self) -> &LeaseMetrics {
        &self.metrics
    }

    /// This worker's id.
    pub fn worker(&self) -> &str {
        &self.options.worker
    }

    fn held_now(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The leases the next term reads: held, and neither ended nor being given up.
    pub fn term_leases(&self) -> Vec<Lease> {
        let held = self.held_now();
        held.leases
            .values()
            .filter(|l| !held.shedding.contains(&l.shard) && !held.ended.contains(&l.shard))
            .cloned()
            .collect()
    }

    /// Whether no lease can name checkpoint object `name` any more: a scan begun after it
    /// was recorded (at `recorded`) found no row naming it. Rows only ever move on to newer
    /// objects, so an object unnamed then stays unnamed.
    pub fn unnamed(&self, name: &str, recorded: Instant) -> bool {
        let named = self.named.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        named.as_ref().is_some_and(|(scanned, names)| *scanned > recorded && !names.contains(name))
    }

    /// The counter `shard` is held with, if held.
    pub fn counter(&self, shard: &str) -> Option<u64> {
        self.held_now().leases.get(shard).map(|l| l.counter)
    }

    /// Changes whenever the set of shards the pipeline should read changes.
    pub fn generation(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    fn replan(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// `shard` was read to its end (its final state is in the checkpoint just recorded): the
    /// term stops, and the lease is given up for good.
    pub fn shard_ended(&self, shard: &str) {
        if self.held_now().ended.insert(shard.to_string()) {
            tracing::info!(
                "shard {shard} read to its end: its children can be leased once this checkpoint is recorded"
            );
            self.replan();
        }
    }

    /// A write for `shard` was refused (the lease moved): forget it and look again now.
    pub fn lost(&self, shard: &str) {
        if self.held_now().leases.remove(shard).is_some() {
            self.metrics.lost.inc();
            self.metrics.held.dec();
            self.replan();
        }
        self.wake.notify_one();
    }

    /// After a term's final checkpoint: give up the leases being shed and the ended ones.
    /// Returns whether a shard of the term had ended (its children become leasable, and the
    /// lease loop may take them a moment later).
    pub async fn after_term(&self) -> Result<bool, LeaseError> {
        let (going, ended) = {
            let held = self.held_now();
            let going: Vec<Lease> = held
                .leases
                .values()
                .filter(|l| held.shedding.contains(&l.shard) || held.ended.contains(&l.shard))
                .cloned()
                .collect();
            (going, held.ended.clone())
        };
        for lease in &going {
            let finished = ended.contains(&lease.shard);
            let released = self.table.release(&lease.shard, self.worker(), lease.counter, finished).await?;
            let mut held = self.held_now();
            held.leases.remove(&lease.shard);
            held.shedding.remove(&lease.shard);
            held.ended.remove(&lease.shard);
            drop(held);
            self.metrics.held.dec();
            if released {
                self.metrics.released.inc();
                tracing::info!(
                    "gave up shard {}{}",
                    lease.shard,
                    if finished { " (read to its end)" } else { " to rebalance" }
                );
            } else {
                self.metrics.lost.inc();
            }
        }
        if !going.is_empty() {
            self.table.bump().await?;
        }
        if !ended.is_empty() {
            self.discover().await?;
        }
        Ok(!ended.is_empty())
    }

    /// Whether a lease that can be read is free in the table: no owner, or an owner no longer
    /// in the group. A worker with `--until-idle` does not end while one is: the lease loop
    /// takes it once this worker's share allows (a worker that went silent still counts in the
    /// share until it is removed from the group, after the failover time).
    pub async fn free_leases_left(&self) -> Result<bool, LeaseError> {
        let group = self.table.group().await?;
        let leases = self.table.leases().await?;
        let by_shard: BTreeMap<&str, &Lease> = leases.iter().map(|l| (l.shard.as_str(), l)).collect();
        Ok(leases.iter().any(|lease| {
            matches!(LeaseState::of(lease, &group, &by_shard), LeaseState::Free | LeaseState::Expired)
        }))
    }

    /// Give every lease up and leave the group (after the last term's final checkpoint).
    pub async fn stop(&self) -> Result<(), LeaseError> {
        self.stopping.store(true, Ordering::Release);
        self.wake.notify_one();
        {
            let mut held = self.held_now();
            let shards: Vec<String> = held.leases.keys().cloned().collect();
            held.shedding.extend(shards);
        }
        self.after_term().await?;
        self.table.leave(self.worker()).await?;
        self.deadline.close();
        Ok(())
    }
}
