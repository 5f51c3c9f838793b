//! The operator instances of the pipeline: `--parallelism` of them, each owning a range of key
//! groups ([`crate::routing`]), each running on its own thread.
//!
//! The pipeline works in steps. It hands over the batches it has (one shard's records each,
//! split by the source into one sub-batch per instance, in order, so every record of a key
//! reaches the same instance in the order of its shard: [`crate::source::routed`]); each
//! instance, on its own thread, processes its sub-batches; the step ends when all are done.
//! Between steps no instance is in a call, which is where swaps, rollbacks, ticks and
//! checkpoints happen, with no locks around the instances.

mod side_by_side;
mod slot;

use std::time::{Duration, Instant};

use weir_contract::{Grouping, KeyedStates, Output};

use super::PipelineError;
use super::shadow::{ShadowFeed, Work};
use crate::deployment::Shadowed;
use crate::metrics::Metrics;
use crate::operator::{CallError, LoadedOperator, OnOperatorError, Processed, Runner, RunnerError};
use crate::routing::{self, Router};
use crate::source::Routed;
use side_by_side::each;
use slot::Slot;

/// What processing one sub-batch produced.
#[derive(Debug)]
pub struct Done {
    /// The shard the records came from.
    pub shard: String,
    /// Outputs (with the latest event time accepted) and dead letters.
    pub processed: Processed,
}

/// What a step produced, and the instances that failed a sub-batch on probation (with why).
pub type Stepped = (Vec<Done>, Vec<(usize, CallError)>);

/// Every instance, the router, and the threads they run on.
pub struct Instances {
    loaded: LoadedOperator,
    router: Router,
    slots: Vec<Slot>,
    /// Threads for instances 1.., when there are several; instance 0 runs on the caller's.
    pool: Option<rayon::ThreadPool>,
    snapshot_every: usize,
    on_error: OnOperatorError,
}

/// How instance `i` of `parallelism` is named in messages.
fn name(instance: usize, parallelism: usize) -> String {
    format!("instance {instance} of {parallelism}")
}

impl Instances {
    /// `parallelism` instances of `loaded` (at least 1), each snapshotting every
    /// `snapshot_every` calls and treating records it fails on as `on_error` says, each
    /// restored with the entries of `state` it owns (empty for a fresh start; see
    /// [`split_by_owner`]).
    pub fn new(
        loaded: LoadedOperator,
        parallelism: usize,
        (snapshot_every, on_error): (usize, OnOperatorError),
        state: &KeyedStates,
        metrics: &Metrics,
    ) -> Result<Self, PipelineError> {
        let parallelism = parallelism.max(1);
        let pool = if parallelism > 1 {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(parallelism - 1)
                .thread_name(|i| format!("weir-instance-{}", i + 1))
                .build()
                .map_err(|e| PipelineError::Threads(e.to_string()))?;
            Some(pool)
        } else {
            None
        };
        let mut slots = Vec::with_capacity(parallelism);
        for (i, state) in split_by_owner(state, parallelism).into_iter().enumerate() {
            let runner = Runner::new(loaded.clone(), &name(i, parallelism), state)?
                .with_snapshot_every(snapshot_every)
                .with_on_error(on_error);
            slots.push(Slot::new(runner, metrics.instance(i)));
        }
        metrics.parallelism.set(parallelism as i64);
        Ok(Self {
            router: Router::new(loaded.grouping().clone(), parallelism),
            loaded,
            slots,
            pool,
            snapshot_every,
            on_error,
        })
    }

    /// The operator every instance runs.
    pub fn loaded(&self) -> &LoadedOperator {
        &self.loaded
    }

    /// How many instances there are.
    pub fn parallelism(&self) -> usize {
        self.slots.len()
    }

    /// How records are routed to the instances (the source routes them as it reads them).
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Hand over `batch` for the next step: each instance queues its sub-batch (the batch is
    /// routed first if its source did not route it).
    pub fn route(&mut self, batch: impl Into<Routed>) {
        let mut batch = batch.into();
        batch.route(&self.router);
        for (slot, part) in self.slots.iter_mut().zip(batch.into_parts()) {
            if !part.is_empty() {
                slot.queue.push_back(part);
            }
        }
    }

    /// Process everything handed over since the last step, every instance on its own thread.
    /// Returns what each sub-batch produced, and the instances that failed a sub-batch while
    /// `probation` (their queue still holds it; see [`run_one`](Self::run_one)).
    pub fn step(&mut self, probation: bool) -> Result<Stepped, RunnerError> {
        let results = each(self.pool.as_ref(), &mut self.slots, |_, slot| slot.run(probation));
        let mut done = Vec::new();
        let mut failed = Vec::new();
        for (i, result) in results.into_iter().enumerate() {
            let (d, failure) = result?;
            done.extend(d);
            if let Some(error) = failure {
                failed.push((i, error));
            }
        }
        Ok((done, failed))
    }

    /// Process what is left in instance `instance`'s queue, not on probation (after a failure
    /// on probation was decided on).
    pub fn run_one(&mut self, instance: usize) -> Result<Vec<Done>, RunnerError> {
        let Some(slot) = self.slots.get_mut(instance) else { return Ok(Vec::new()) };
        let (done, _) = slot.run(false)?;
        Ok(done)
    }

    /// Processing time advanced to `now_ms`, the watermark is `watermark_ms`: every instance
    /// is told. Non-empty outputs, with their instance.
    pub fn tick(&mut self, now_ms: i64, watermark_ms: i64) -> Result<Vec<(usize, Output)>, RunnerError> {
        self.outputs(
            |runner| runner.tick(now_ms, watermark_ms),
            |live| Work::Tick { now_ms, watermark_ms, live },
        )
    }

    /// The input ended: every instance emits what it holds.
    pub fn finish(&mut self, now_ms: i64) -> Result<Vec<(usize, Output)>, RunnerError> {
        self.outputs(|runner| runner.finish(now_ms), |live| Work::Finish { now_ms, live })
    }

    /// Every instance's output of `call`; each shadowing candidate is handed `shadow` of it.
    fn outputs(
        &mut self,
        call: impl Fn(&mut Runner) -> Result<Output, RunnerError> + Sync,
        shadow: impl Fn(Output) -> Work + Sync,
    ) -> Result<Vec<(usize, Output)>, RunnerError> {
        let results = each(self.pool.as_ref(), &mut self.slots, |_, slot| {
            let output = call(&mut slot.runner);
            slot.count_restarts();
            if let Ok(output) = &output {
                slot.metrics.records_out.inc_by(output.len() as u64);
                slot.shadow(|| shadow(output.clone()));
            }
            output
        });
        let mut outputs = Vec::new();
        for (i, output) in results.into_iter().enumerate() {
            let output = output?;
            if !output.is_empty() {
                outputs.push((i, output));
            }
        }
        Ok(outputs)
    }

    /// The state of every instance, side by side, in one [`KeyedStates`] (instance-wide entries
    /// once per instance): what a checkpoint holds. Only between steps.
    pub fn snapshot(&mut self) -> Result<KeyedStates, RunnerError> {
        let states = each(self.pool.as_ref(), &mut self.slots, |_, slot| slot.runner.snapshot());
        let mut all = KeyedStates::default();
        for state in states {
            all.append(&state?);
        }
        Ok(all)
    }

    /// Start `candidate` beside every instance, each candidate instance restored from its live
    /// instance's snapshot (any candidate shadowing before is stopped). One that groups
    /// records by another key, or cannot take the state, is not started: its tally says why.
    /// Only between steps.
    pub fn shadow(&mut self, candidate: &Shadowed) {
        self.unshadow();
        let tally = &candidate.tally;
        if candidate.loaded.grouping() != self.loaded.grouping() {
            tally.stopped(
                SwapError::Grouping {
                    running: self.loaded.grouping().clone(),
                    next: candidate.loaded.grouping().clone(),
                }
                .to_string(),
            );
            return;
        }
        tally.started();
        let parallelism = self.slots.len();
        let started = each(self.pool.as_ref(), &mut self.slots, |i, slot| {
            let name = format!("candidate {}", name(i, parallelism));
            let state = slot.runner.snapshot().map_err(|e| e.to_string())?;
            let runner = Runner::new(candidate.loaded.clone(), &name, state).map_err(|e| e.to_string())?;
            slot.shadow = Some(ShadowFeed::start(runner, name, tally.clone()).map_err(|e| e.to_string())?);
            Ok::<_, String>(())
        });
        if let Some(why) = started.into_iter().find_map(Result::err) {
            self.unshadow();
            tally.stopped(format!("it cannot start from the live state: {why}"));
        }
    }

    /// Stop every candidate instance.
    pub fn unshadow(&mut self) {
        for slot in &mut self.slots {
            slot.shadow = None;
        }
    }

    /// Switch every instance to `next`, carrying each one's state: snapshot the old instance,
    /// restore into a new one, all instances side by side. Every new instance is made before
    /// any switches, so a version that cannot restore the state is never switched to (the error
    /// says why); nor is one that groups records by another key (its state would belong to
    /// other instances). Returns the operator replaced and each instance's pause.
    pub fn swap(&mut self, next: LoadedOperator) -> Result<(LoadedOperator, Vec<Duration>), SwapError> {
        if next.grouping() != self.loaded.grouping() {
            return Err(SwapError::Grouping {
                running: self.loaded.grouping().clone(),
                next: next.grouping().clone(),
            });
        }
        let parallelism = self.slots.len();
        let (snapshot_every, on_error) = (self.snapshot_every, self.on_error);
        let prepared = each(self.pool.as_ref(), &mut self.slots, |i, slot| {
            let started = Instant::now();
            let state = slot.runner.snapshot()?;
            let runner = Runner::new(next.clone(), &name(i, parallelism), state)?
                .with_snapshot_every(snapshot_every)
                .with_on_error(on_error);
            Ok::<_, RunnerError>((runner, started.elapsed()))
        });
        let prepared = prepared.into_iter().collect::<Result<Vec<_>, _>>()?;
        let mut pauses = Vec::with_capacity(prepared.len());
        for (slot, (runner, pause)) in self.slots.iter_mut().zip(prepared) {
            slot.runner = runner;
            slot.restarts_seen = 0;
            // A candidate compared with the version replaced compares with nothing now.
            slot.shadow = None;
            pauses.push(pause);
        }
        Ok((std::mem::replace(&mut self.loaded, next), pauses))
    }
}

/// The entries of `state` each of `parallelism` instances owns, by the key group of their key
/// (whatever the parallelism the state was taken with); instance-wide entries go to every
/// instance, for the operator to combine.
pub fn split_by_owner(state: &KeyedStates, parallelism: usize) -> Vec<KeyedStates> {
    let mut parts = vec![KeyedStates::default(); parallelism];
    if parallelism == 1 {
        parts[0] = state.clone();
        return parts;
    }
    for entry in state.iter() {
        if entry.is_instance_wide() {
            parts.iter_mut().for_each(|part| part.push_entry(entry));
        } else {
            parts[routing::owner(routing::key_group(entry.key.as_bytes()), parallelism)].push_entry(entry);
        }
    }
    parts
}

/// Why a version was not switched to.
#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    /// It groups records by another key.
    #[error(
        "it groups records by {next}, the running version by {running}; state belongs to the grouping key, so a change of grouping key needs a fresh start (stop weir, then run the new version)"
    )]
    Grouping {
        /// The running version's grouping key.
        running: Grouping,
        /// The new version's.
        next: Grouping,
    },
    /// Snapshot, instantiation or restore failed.
    #[error(transparent)]
    Runner(#[from] RunnerError),
}
