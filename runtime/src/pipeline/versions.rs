//! Operator versions while records flow: switching every shard to a new version at a batch
//! boundary, carrying its state (live swap), and switching back when the new version traps
//! too often soon after (rollback).
//!
//! New versions arrive already downloaded, verified, compiled and initialised (see
//! [`crate::artifact::watch`]), so the pipeline only snapshots, instantiates and restores. A
//! version that cannot restore the state is never switched to. After a switch the new version
//! is on probation for `window`: a batch it fails on is handed back untouched
//! ([`ShardOperator::try_process`]); more than `max_traps` such failures roll every shard back
//! to the previous version, with the state, and the failed batch is processed by it, so
//! nothing is lost or processed twice.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use weir_operator::OwnedBatch;

use super::PipelineError;
use super::shards::Shards;
use crate::metrics::{Metrics, ShardMetrics};
use crate::operator::{LoadedOperator, Processed};

/// When a new version is rolled back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RollbackPolicy {
    /// Roll back after more than this many failed batches ...
    pub max_traps: u32,
    /// ... within this long after the switch.
    pub window: Duration,
}

impl Default for RollbackPolicy {
    fn default() -> Self {
        Self { max_traps: 2, window: Duration::from_secs(60) }
    }
}

struct Probation {
    previous: LoadedOperator,
    since: Instant,
    traps: u32,
}

/// The operator the pipeline starts with, and where new versions come from.
pub struct Operators {
    initial: LoadedOperator,
    updates: Option<mpsc::Receiver<LoadedOperator>>,
    policy: RollbackPolicy,
    probation: Option<Probation>,
}

impl From<LoadedOperator> for Operators {
    fn from(initial: LoadedOperator) -> Self {
        Self { initial, updates: None, policy: RollbackPolicy::default(), probation: None }
    }
}

impl Operators {
    /// Start with `initial`, switch to each version `updates` delivers.
    pub fn watched(
        initial: LoadedOperator,
        updates: mpsc::Receiver<LoadedOperator>,
        policy: RollbackPolicy,
    ) -> Self {
        Self { initial, updates: Some(updates), policy, probation: None }
    }

    /// The first operator.
    pub fn initial(&self) -> LoadedOperator {
        self.initial.clone()
    }

    /// The next version to switch to; never resolves when there are none to come.
    pub async fn next_version(&mut self) -> LoadedOperator {
        loop {
            let next = match &mut self.updates {
                Some(updates) => updates.recv().await,
                None => std::future::pending().await,
            };
            match next {
                Some(next) => return next,
                None => self.updates = None,
            }
        }
    }

    /// Switch every shard to `next` (see the module documentation); refused versions are
    /// logged and counted, and the current one keeps running.
    pub fn switch(&mut self, shards: &mut Shards, next: LoadedOperator, metrics: &Metrics) {
        let from = shards.loaded().artifact().digest;
        let to = next.artifact().digest;
        match swap(shards, next, metrics) {
            Ok((previous, pause)) => {
                tracing::info!(
                    "switched operator {} -> {} ({} {}) on {} shards; pause {:.2} ms per shard at most",
                    from.short(),
                    to.short(),
                    shards.loaded().name(),
                    shards.loaded().version(),
                    shards.len(),
                    pause.as_secs_f64() * 1e3
                );
                self.probation = Some(Probation { previous, since: Instant::now(), traps: 0 });
            }
            Err(e) => {
                metrics.versions_refused.inc();
                tracing::warn!(
                    "operator {} not switched to, {} keeps running: {e}",
                    to.short(),
                    from.short()
                );
            }
        }
    }

    /// Process `batch` on its shard's operator, rolling back per the policy.
    pub fn process(
        &mut self,
        shards: &mut Shards,
        batch: &mut OwnedBatch,
        metrics: &Metrics,
    ) -> Result<(Processed, ShardMetrics), PipelineError> {
        let shard = batch.shard_id.clone();
        if self.probation.as_ref().is_some_and(|p| p.since.elapsed() >= self.policy.window) {
            self.probation = None;
        }
        if self.probation.is_some() {
            let entry = shards.get_mut(&shard).ok_or_else(|| PipelineError::UnknownShard(shard.clone()))?;
            match entry.operator.try_process(batch)? {
                Ok(processed) => return Ok((processed, entry.metrics.clone())),
                Err(error) => self.failed_on_probation(shards, &shard, &error.to_string(), metrics),
            }
        }
        let entry = shards.get_mut(&shard).ok_or(PipelineError::UnknownShard(shard))?;
        let processed = entry.operator.process(batch)?;
        entry.count_restarts();
        Ok((processed, entry.metrics.clone()))
    }

    fn failed_on_probation(&mut self, shards: &mut Shards, shard: &str, error: &str, metrics: &Metrics) {
        let Some(probation) = self.probation.as_mut() else { return };
        probation.traps += 1;
        let (traps, within) = (probation.traps, probation.since.elapsed());
        tracing::warn!(
            "new operator {} failed a batch on shard {shard} ({traps} within {:.1} s of the switch): {error}",
            shards.loaded().artifact().digest.short(),
            within.as_secs_f64()
        );
        if traps <= self.policy.max_traps {
            return;
        }
        let Some(probation) = self.probation.take() else { return };
        let (bad, good) = (shards.loaded().artifact().digest, probation.previous.artifact().digest);
        match swap(shards, probation.previous, metrics) {
            Ok(_) => {
                metrics.operator_rollbacks.inc();
                tracing::warn!(
                    "rolled back operator {} -> {} after {traps} failed batches within {:.1} s of the switch; the failed batch goes to {}",
                    bad.short(),
                    good.short(),
                    within.as_secs_f64(),
                    good.short()
                );
            }
            Err(e) => tracing::error!("cannot roll back operator {} -> {}: {e}", bad.short(), good.short()),
        }
    }
}

/// Switch, with metrics; the operator replaced and the longest per-shard pause.
fn swap(
    shards: &mut Shards,
    next: LoadedOperator,
    metrics: &Metrics,
) -> Result<(LoadedOperator, Duration), crate::operator::RunnerError> {
    let (previous, pauses) = shards.swap(next)?;
    for pause in &pauses {
        metrics.swap_pause.observe(pause.as_secs_f64());
    }
    metrics.operator_swaps.inc();
    Ok((previous, pauses.into_iter().max().unwrap_or_default()))
}
