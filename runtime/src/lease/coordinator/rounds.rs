//! The worker's background rounds: renewals on a task of their own, and every `poll` a look
//! at the group row that expels silent workers and, when the group changed (or every
//! `rescan`), a scan of every lease that notices losses and follows the balance plan (a
//! worker short of its share with nothing free bumps the group row, so that those who must
//! give it a lease look again); every `discovery`, new shards listed and given rows.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::Coordinator;
use crate::lease::{Lease, LeaseError, balance};

/// Leases taken in one round at most; the rest after another look at the group, so that a
/// worker starting alone does not take every lease while others are joining.
const MAX_TAKES_PER_ROUND: usize = 32;

/// A task aborted when this is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How often a worker short of its share, with nothing free to take, asks the others to look
/// at the table again (a bump of the group row: they read the leases only when it changes).
const ASK_EVERY: Duration = Duration::from_secs(2);

/// What one scan found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Look {
    /// It followed the plan.
    Done,
    /// Another worker took a lease this one wanted first: look again next round.
    Again,
    /// This worker is short of its share with nothing free to take.
    Short,
}

/// What the loop remembers between rounds.
struct Rounds {
    changes: Option<u64>,
    last_scan: Instant,
    last_ask: Option<Instant>,
    /// The last scan found this worker short: it scans again once it may ask again, whether
    /// or not the group row changed, until it is no longer short.
    short: bool,
    last_discovery: Instant,
    /// Other workers' heartbeats, with when this worker first saw each value.
    seen: HashMap<String, (u64, Instant)>,
}

impl Coordinator {
    /// List the stream's shards and add rows for new ones.
    pub(super) async fn discover(&self) -> Result<(), LeaseError> {
        let Some((kinesis, stream)) = &self.stream else { return Ok(()) };
        match weir_kinesis::shards::list_shards(kinesis, stream).await {
            Ok(shards) => {
                if self.table.add(&shards).await? > 0 {
                    self.table.bump().await?;
                }
            }
            Err(e) => tracing::warn!("cannot list the shards of {stream} (will try again): {e}"),
        }
        Ok(())
    }

    /// The lease loop, until [`Coordinator::stop`]. Failures of the table are counted and
    /// tried again on the next round. Renewals run on a task of their own, so that a long
    /// round (many leases to take from a slow table) never delays them.
    pub async fn run(self: Arc<Self>) {
        // Ends with this loop, however it ends (aborted included), as in a process that dies.
        let renewals = AbortOnDrop(tokio::spawn(self.clone().renew()));
        let now = Instant::now();
        let mut rounds = Rounds {
            changes: None,
            last_scan: now,
            last_ask: None,
            short: false,
            last_discovery: now,
            seen: HashMap::new(),
        };
        while !self.stopping.load(Ordering::Acquire) {
            if let Err(e) = self.round(&mut rounds).await {
                self.metrics.errors.inc();
                tracing::warn!("lease table: {e} (trying again)");
            }
            tokio::select! {
                () = tokio::time::sleep(self.options.poll) => {}
                () = self.wake.notified() => rounds.changes = None,
            }
        }
        drop(renewals);
    }

    /// Renew every failover time / 3: one write for every lease held, which moves the write deadline.
    async fn renew(self: Arc<Self>) {
        let mut heartbeat = 1;
        let period = self.options.failover / 3;
        let mut next = Instant::now() + period;
        while !self.stopping.load(Ordering::Acquire) {
            tokio::time::sleep_until(next).await;
            let sent = Instant::now();
            next = sent + period;
            heartbeat += 1;
            match self.table.renew(self.worker(), heartbeat).await {
                Ok(true) => {
                    self.metrics.renewal.observe(sent.elapsed().as_secs_f64());
                    self.deadline.renewed(sent, self.options.failover);
                }
                Ok(false) if !self.stopping.load(Ordering::Acquire) => {
                    if let Err(e) = self.expelled().await {
                        self.metrics.errors.inc();
                        tracing::warn!("lease table: {e} (trying again)");
                    }
                    self.wake.notify_one();
                }
                Ok(false) => {}
                Err(e) => {
                    self.metrics.errors.inc();
                    tracing::warn!(
                        "cannot renew the leases: {e} (trying again; writes stop if this lasts the failover time)"
                    );
                }
            }
        }
    }

    async fn round(&self, rounds: &mut Rounds) -> Result<(), LeaseError> {
        let me = self.worker().to_string();
        let group = self.table.group().await?;
        let now = Instant::now();
        let mut live: BTreeSet<String> = BTreeSet::new();
        for (worker, member) in &group.workers {
            if *worker == me {
                live.insert(worker.clone());
                continue;
            }
            let seen = rounds.seen.entry(worker.clone()).or_insert((member.heartbeat, now));
            if seen.0 != member.heartbeat {
                *seen = (member.heartbeat, now);
            } else if now.duration_since(seen.1) >= self.options.failover {
                if self.table.expel(worker, member.heartbeat).await? {
                    tracing::warn!(
                        "worker {worker} has not renewed for {:?}: its leases are free to take",
                        self.options.failover
                    );
                }
                continue;
            }
            live.insert(worker.clone());
        }
        rounds.seen.retain(|w, _| group.workers.contains_key(w));
        if !group.workers.contains_key(&me) && !self.stopping.load(Ordering::Acquire) {
            // Removed while its renewal was late: everything it held may be taken.
            self.expelled().await?;
            return Ok(());
        }
        if now.duration_since(rounds.last_discovery) >= self.options.discovery {
            rounds.last_discovery = now;
            self.discover().await?;
        }
        let may_ask = rounds.last_ask.is_none_or(|at| now.duration_since(at) >= ASK_EVERY);
        if rounds.changes == Some(group.changes)
            && now.duration_since(rounds.last_scan) < self.options.rescan
            && !(rounds.short && may_ask)
        {
            return Ok(());
        }
        rounds.changes = Some(group.changes);
        rounds.last_scan = now;
        let look = self.scan(&live).await?;
        rounds.short = look == Look::Short;
        if look == Look::Again {
            rounds.changes = None;
        }
        // The workers that must give a lease up for this one (balance.rs) decide it when they
        // next read the table, which they do when the group row changes: after they took the
        // last free leases, nothing may change it for minutes. Asked at most every ASK_EVERY;
        // a short worker not allowed to ask yet scans again when it is (above).
        if rounds.short && may_ask {
            rounds.last_ask = Some(now);
            tracing::info!("short of its share with no lease free: asking the group to rebalance");
            self.table.bump().await?;
        }
        Ok(())
    }

    /// Read every lease: drop those lost, then follow the plan.
    async fn scan(&self, live: &BTreeSet<String>) -> Result<Look, LeaseError> {
        let me = self.worker();
        let began = Instant::now();
        let leases = self.table.leases().await?;
        let names = leases.iter().filter_map(|l| l.checkpoint.clone()).collect();
        *self.named.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((began, names));
        let rows: BTreeMap<&str, &Lease> = leases.iter().map(|l| (l.shard.as_str(), l)).collect();
        let settling = {
            let mut held = self.held_now();
            let lost: Vec<String> = held
                .leases
                .values()
                .filter(|mine| {
                    rows.get(mine.shard.as_str())
                        .is_none_or(|row| row.owner.as_deref() != Some(me) || row.counter != mine.counter)
                })
                .map(|l| l.shard.clone())
                .collect();
            for shard in &lost {
                tracing::warn!("lease of shard {shard} was taken by another worker");
                held.leases.remove(shard);
                held.shedding.remove(shard);
                held.ended.remove(shard);
                self.metrics.lost.inc();
                self.metrics.held.dec();
            }
            // Rows still naming this worker that it does not run (dropped when it missed its
            // renewals, before anyone took them): it goes on with them.
            let adopted: Vec<Lease> = leases
                .iter()
                .filter(|row| row.owner.as_deref() == Some(me) && !held.leases.contains_key(&row.shard))
                .cloned()
                .collect();
            for row in &adopted {
                held.leases.insert(row.shard.clone(), row.clone());
                self.metrics.held.inc();
            }
            if !lost.is_empty() || !adopted.is_empty() {
                self.replan();
            }
            // A term is about to end: plan again once its leases are given up.
            !held.shedding.is_empty() || !held.ended.is_empty()
        };
        if settling || self.stopping.load(Ordering::Acquire) {
            return Ok(Look::Done);
        }
        let plan = balance::plan(&leases, live, me);
        let mut took = false;
        let mut missed = plan.take.len() > MAX_TAKES_PER_ROUND;
        for lease in plan.take.into_iter().take(MAX_TAKES_PER_ROUND) {
            let Some(counter) = self.table.take(&lease, me).await? else {
                missed = true;
                continue;
            };
            match &lease.owner {
                Some(previous) => {
                    self.metrics.stolen.inc();
                    tracing::info!("took shard {} from {previous}, which stopped renewing", lease.shard);
                }
                None => {
                    self.metrics.taken.inc();
                    tracing::info!("took shard {}", lease.shard);
                }
            }
            self.metrics.held.inc();
            let taken = Lease { owner: Some(me.to_string()), counter, ..lease };
            self.held_now().leases.insert(taken.shard.clone(), taken);
            took = true;
        }
        if took {
            // Once for all: the pipeline starts again with every lease just taken.
            self.replan();
        }
        if !plan.shed.is_empty() {
            tracing::info!("giving up {} to rebalance: {}", plan.shed.len(), plan.shed.join(", "));
            self.held_now().shedding.extend(plan.shed);
            self.replan();
        }
        Ok(if missed {
            Look::Again
        } else if plan.short {
            Look::Short
        } else {
            Look::Done
        })
    }

    /// This worker was removed from the group: everything it held may be someone else's now.
    async fn expelled(&self) -> Result<(), LeaseError> {
        self.deadline.close();
        let dropped = std::mem::take(&mut *self.held_now());
        if !dropped.leases.is_empty() {
            tracing::warn!(
                "this worker missed its renewals and was removed from the group: its {} leases are dropped",
                dropped.leases.len()
            );
            self.metrics.lost.inc_by(dropped.leases.len() as u64);
            self.metrics.held.set(0);
            self.replan();
        }
        let sent = Instant::now();
        self.table.join(self.worker(), 1).await?;
        self.deadline.renewed(sent, self.options.failover);
        Ok(())
    }
}
