//! Carrying out version decisions on the running instances (the decisions are
//! [`crate::deployment::versions`]'): a switch to a new version (each instance after what it was handed), every
//! instance's state carried across, and what to do when an instance fails a sub-batch while a
//! new version is on probation: roll every instance back when the policy says so.

use std::time::Duration;

use super::instances::{Instances, SwapError};
use crate::deployment::{Verdict, Versions};
use crate::metrics::Metrics;
use crate::operator::{CallError, LoadedOperator};

/// Switch every instance to `next`; a version that cannot take the state is refused, logged
/// and counted, and the current one keeps running.
pub fn switch(instances: &mut Instances, versions: &mut Versions, next: LoadedOperator, metrics: &Metrics) {
    let from = instances.loaded().artifact().digest;
    let to = next.artifact().digest;
    match swap(instances, next, metrics) {
        Ok((previous, pause)) => {
            tracing::info!(
                "switched operator {} -> {} ({} {}) on {} instances; pause {:.2} ms per instance at most",
                from.short(),
                to.short(),
                instances.loaded().name(),
                instances.loaded().version(),
                instances.parallelism(),
                pause.as_secs_f64() * 1e3
            );
            versions.switched(previous);
        }
        Err(e) => {
            metrics.version_refused("state");
            tracing::warn!("operator {} not switched to, {} keeps running: {e}", to.short(), from.short());
        }
    }
}

/// Decide on the sub-batches instances failed while a new version is on probation (each
/// holds its own): each is counted; when the policy says so, every instance goes back to the
/// previous version. Then each instance goes on, the one it held first, not on probation.
pub fn decide(
    instances: &mut Instances,
    versions: &mut Versions,
    failed: Vec<(usize, CallError)>,
    metrics: &Metrics,
) {
    for (instance, error) in failed {
        failed_on_probation(instances, versions, instance, &error.to_string(), metrics);
        instances.release(instance);
    }
}

fn failed_on_probation(
    instances: &mut Instances,
    versions: &mut Versions,
    instance: usize,
    error: &str,
    metrics: &Metrics,
) {
    let bad = instances.loaded().artifact().digest;
    match versions.failed() {
        None => {}
        Some(Verdict::Keep { traps, within }) => tracing::warn!(
            "new operator {} failed a batch on instance {instance} ({traps} within {:.1} s of the switch): {error}",
            bad.short(),
            within.as_secs_f64()
        ),
        Some(Verdict::RollBack { to, traps, within }) => {
            let good = to.artifact().digest;
            match swap(instances, *to, metrics) {
                Ok(_) => {
                    metrics.operator_rollbacks.inc();
                    tracing::warn!(
                        "rolled back operator {} -> {} after {traps} failed batches within {:.1} s of the switch (last on instance {instance}: {error}); the failed batch goes to {}",
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

/// Switch, with metrics; the operator replaced and the longest per-instance pause.
fn swap(
    instances: &mut Instances,
    next: LoadedOperator,
    metrics: &Metrics,
) -> Result<(LoadedOperator, Duration), SwapError> {
    let (previous, pauses) = instances.swap(next)?;
    for pause in &pauses {
        metrics.swap_pause.observe(pause.as_secs_f64());
    }
    metrics.operator_swaps.inc();
    Ok((previous, pauses.into_iter().max().unwrap_or_default()))
}
