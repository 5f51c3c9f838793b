//! Carrying out version decisions on the running shards (the decisions are
//! [`crate::deployment::versions`]'): a switch to a new version at a batch boundary, every
//! shard's state carried across, and the processing of a batch while a new version is on
//! probation, rolling every shard back when the policy says so.

use std::time::Duration;

use weir_contract::OwnedBatch;

use super::PipelineError;
use super::shards::Shards;
use crate::deployment::{Verdict, Versions};
use crate::metrics::{Metrics, ShardMetrics};
use crate::operator::{LoadedOperator, Processed, RunnerError};

/// Switch every shard to `next`; a version that cannot take the state is refused, logged and
/// counted, and the current one keeps running.
pub fn switch(shards: &mut Shards, versions: &mut Versions, next: LoadedOperator, metrics: &Metrics) {
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
            versions.switched(previous);
        }
        Err(e) => {
            metrics.versions_refused.inc();
            tracing::warn!("operator {} not switched to, {} keeps running: {e}", to.short(), from.short());
        }
    }
}

/// Process `batch` on its shard's operator. While a new version is on probation, a batch it
/// fails is handed back and counted; when the policy says so, every shard goes back to the
/// previous version, which then processes the batch.
pub fn process(
    shards: &mut Shards,
    versions: &mut Versions,
    batch: &mut OwnedBatch,
    metrics: &Metrics,
) -> Result<(Processed, ShardMetrics), PipelineError> {
    let shard = batch.shard_id.clone();
    if versions.on_probation() {
        let entry = shards.get_mut(&shard).ok_or_else(|| PipelineError::UnknownShard(shard.clone()))?;
        match entry.operator.try_process(batch)? {
            Ok(processed) => return Ok((processed, entry.metrics.clone())),
            Err(error) => failed_on_probation(shards, versions, &shard, &error.to_string(), metrics),
        }
    }
    let entry = shards.get_mut(&shard).ok_or(PipelineError::UnknownShard(shard))?;
    let processed = entry.operator.process(batch)?;
    entry.count_restarts();
    Ok((processed, entry.metrics.clone()))
}

fn failed_on_probation(
    shards: &mut Shards,
    versions: &mut Versions,
    shard: &str,
    error: &str,
    metrics: &Metrics,
) {
    let bad = shards.loaded().artifact().digest;
    match versions.failed() {
        None => {}
        Some(Verdict::Keep { traps, within }) => tracing::warn!(
            "new operator {} failed a batch on shard {shard} ({traps} within {:.1} s of the switch): {error}",
            bad.short(),
            within.as_secs_f64()
        ),
        Some(Verdict::RollBack { to, traps, within }) => {
            let good = to.artifact().digest;
            match swap(shards, *to, metrics) {
                Ok(_) => {
                    metrics.operator_rollbacks.inc();
                    tracing::warn!(
                        "rolled back operator {} -> {} after {traps} failed batches within {:.1} s of the switch (last on shard {shard}: {error}); the failed batch goes to {}",
                        bad.short(),
                        good.short(),
                        within.as_secs_f64(),
                        good.short()
                    );
                }
                Err(e) => {
                    tracing::error!("cannot roll back operator {} -> {}: {e}", bad.short(), good.short())
                }
            }
        }
    }
}

/// Switch, with metrics; the operator replaced and the longest per-shard pause.
fn swap(
    shards: &mut Shards,
    next: LoadedOperator,
    metrics: &Metrics,
) -> Result<(LoadedOperator, Duration), RunnerError> {
    let (previous, pauses) = shards.swap(next)?;
    for pause in &pauses {
        metrics.swap_pause.observe(pause.as_secs_f64());
    }
    metrics.operator_swaps.inc();
    Ok((previous, pauses.into_iter().max().unwrap_or_default()))
}
