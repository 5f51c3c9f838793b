//! The operator instances of the pipeline: `--parallelism` of them, each owning a range of key
//! groups ([`crate::routing`]), each running on its own thread ([`worker`]).
//!
//! The pipeline hands every batch over as it comes (one shard's records, split by the source
//! into one sub-batch per instance, in order, so every record of a key reaches the same
//! instance in the order of its shard: [`crate::source::routed`]); each instance processes
//! its sub-batches as they arrive and sends each result back when it is ready, so no instance
//! waits for another. Where every instance must be still (a tick, a checkpoint's snapshot, a
//! swap, a rollback, a candidate's start) the pipeline sends each one a job and waits for all:
//! a job runs after every sub-batch sent before it, so it sees them all processed, and the
//! results they produced are waiting ([`Instances::ready`]) when it returns.

mod slot;
mod teardown;
mod worker;

use std::time::{Duration, Instant};

use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use weir_contract::{Grouping, KeyedStates, Output};

use super::PipelineError;
use super::shadow::{ShadowFeed, Work};
use crate::deployment::Shadowed;
use crate::metrics::Metrics;
use crate::operator::{CallError, LoadedOperator, OnOperatorError, Processed, Runner, RunnerError};
use crate::routing::{self, Router};
use crate::source::Routed;
use slot::{Queued, Slot};
use teardown::Teardown;
use worker::{ToWorker, Worker, each, each_with, one};

/// What processing one sub-batch produced.
#[derive(Debug)]
pub struct Done {
    /// The shard the records came from.
    pub shard: String,
    /// Outputs (with the latest event time accepted) and dead letters.
    pub processed: Processed,
    /// When the source had read the batch it was part of.
    pub read_at: Option<Instant>,
}

/// Results collected: what sub-batches produced, and the instances that failed a sub-batch on
/// probation (with why), each holding it until [`Instances::release`].
pub type Stepped = (Vec<Done>, Vec<(usize, CallError)>);

/// What an instance's thread sends back.
enum Finished {
    /// Instance `.0` processed a sub-batch.
    Done(usize, Done),
    /// Instance `.0` failed a sub-batch on probation, and holds it.
    Failed(usize, CallError),
    /// An instance failed beyond recovery.
    Error(RunnerError),
    /// Instance `.0`'s thread ended (only when the pipeline drops it, or on a panic).
    Stopped(usize),
}

/// Every instance, the router, and the threads they run on.
pub struct Instances {
    loaded: LoadedOperator,
    router: Router,
    workers: Vec<Worker>,
    results: UnboundedReceiver<Finished>,
    /// Results sent for, not received, per instance.
    in_flight: Vec<usize>,
    /// Instances holding a sub-batch they failed on probation.
    held: Vec<bool>,
    snapshot_every: usize,
    on_error: OnOperatorError,
    /// Where replaced instances are dropped, started at the first swap.
    teardown: Option<Teardown>,
}

/// How instance `i` of `parallelism` is named in messages.
fn name(instance: usize, parallelism: usize) -> String {
    format!("instance {instance} of {parallelism}")
}

impl Instances {
    /// `parallelism` instances of `loaded` (at least 1), each snapshotting every
    /// `snapshot_every` calls and treating records it fails on as `on_error` says, each
    /// restored with the entries of `state` it owns (empty for a fresh start; see
    /// [`split_by_owner`]), each started on a thread of its own.
    pub fn new(
        loaded: LoadedOperator,
        parallelism: usize,
        (snapshot_every, on_error): (usize, OnOperatorError),
        state: &KeyedStates,
        metrics: &Metrics,
    ) -> Result<Self, PipelineError> {
        let parallelism = parallelism.max(1);
        let (send, results) = unbounded_channel();
        let mut workers = Vec::with_capacity(parallelism);
        for (i, state) in split_by_owner(state, parallelism).into_iter().enumerate() {
            let runner = Runner::new(loaded.clone(), &name(i, parallelism), state)?
                .with_snapshot_every(snapshot_every)
                .with_on_error(on_error);
            let slot = Slot::new(i, runner, metrics.instance(i), send.clone());
            workers.push(Worker::start(slot).map_err(|e| PipelineError::Threads(e.to_string()))?);
        }
        metrics.parallelism.set(parallelism as i64);
        Ok(Self {
            router: Router::new(loaded.grouping().clone(), parallelism),
            loaded,
            workers,
            results,
            in_flight: vec![0; parallelism],
            held: vec![false; parallelism],
            snapshot_every,
            on_error,
            teardown: None,
        })
    }

    /// The operator every instance runs.
    pub fn loaded(&self) -> &LoadedOperator {
        &self.loaded
    }

    /// How many instances there are.
    pub fn parallelism(&self) -> usize {
        self.workers.len()
    }

    /// How records are routed to the instances (the source routes them as it reads them).
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Sub-batches handed over whose results have not been collected.
    pub fn in_flight(&self) -> usize {
        self.in_flight.iter().sum()
    }

    /// Hand `batch` over, read at `read_at`: each instance gets its sub-batch and processes it
    /// after those before (the batch is routed first if its source did not route it). With
    /// `probation`, an instance that fails its sub-batch holds it (see [`Instances::release`]).
    pub fn route(&mut self, batch: impl Into<Routed>, probation: bool, read_at: Option<Instant>) {
        let mut batch = batch.into();
        batch.route(&self.router);
        for (i, part) in batch.into_parts().into_iter().enumerate() {
            if part.is_empty() {
                continue;
            }
            if let Some(worker) = self.workers.get(i)
                && worker.send(ToWorker::Process(Queued { part, probation, read_at }))
            {
                self.in_flight[i] += 1;
            }
        }
    }

    /// The results ready now, without waiting.
    pub fn ready(&mut self) -> Result<Stepped, PipelineError> {
        let mut stepped = (Vec::new(), Vec::new());
        self.take_ready(&mut stepped)?;
        Ok(stepped)
    }

    /// Add the results ready now to `stepped`.
    fn take_ready(&mut self, stepped: &mut Stepped) -> Result<(), PipelineError> {
        while let Ok(finished) = self.results.try_recv() {
            self.take(finished, stepped)?;
        }
        Ok(())
    }

    /// Wait for the next result, then take it with every other one ready (never returns
    /// while nothing is in flight). Safe to cancel: nothing is taken before the first arrives.
    pub async fn finished(&mut self) -> Result<Stepped, PipelineError> {
        if self.in_flight() == 0 {
            std::future::pending::<()>().await;
        }
        let mut stepped = (Vec::new(), Vec::new());
        let first = self.results.recv().await;
        self.take(first.ok_or_else(stopped)?, &mut stepped)?;
        self.take_ready(&mut stepped)?;
        Ok(stepped)
    }

    /// Wait until every sub-batch handed over is processed, or held by an instance that failed
    /// it on probation.
    pub async fn settle(&mut self) -> Result<Stepped, PipelineError> {
        let mut stepped = (Vec::new(), Vec::new());
        while self.in_flight.iter().zip(&self.held).any(|(&n, &held)| n > 0 && !held) {
            let finished = self.results.recv().await.ok_or_else(stopped)?;
            self.take(finished, &mut stepped)?;
        }
        Ok(stepped)
    }

    fn take(&mut self, finished: Finished, (done, failed): &mut Stepped) -> Result<(), PipelineError> {
        match finished {
            Finished::Done(i, d) => {
                self.in_flight[i] = self.in_flight[i].saturating_sub(1);
                done.push(d);
            }
            Finished::Failed(i, error) => {
                self.held[i] = true;
                failed.push((i, error));
            }
            Finished::Error(error) => return Err(error.into()),
            Finished::Stopped(i) => {
                return Err(PipelineError::Task(format!("operator instance {i} stopped")));
            }
        }
        Ok(())
    }

    /// Let instance `instance`, holding a sub-batch it failed on probation, process it and what
    /// queued behind it, not on probation (the failure was decided on); their results are
    /// [`ready`](Self::ready) when this returns.
    pub fn release(&mut self, instance: usize) {
        if let Some(held) = self.held.get_mut(instance) {
            *held = false;
        }
        one(&self.workers, instance, Slot::release);
    }

    /// Processing time advanced to `now_ms`, the watermark is `watermark_ms`: every instance
    /// is told, after what it was sent. Non-empty outputs, with their instance.
    pub fn tick(&mut self, now_ms: i64, watermark_ms: i64) -> Result<Vec<(usize, Output)>, RunnerError> {
        self.outputs(
            move |runner| runner.tick(now_ms, watermark_ms),
            move |live| Work::Tick { now_ms, watermark_ms, live },
        )
    }

    /// The input ended: every instance emits what it holds.
    pub fn finish(&mut self, now_ms: i64) -> Result<Vec<(usize, Output)>, RunnerError> {
        self.outputs(move |runner| runner.finish(now_ms), move |live| Work::Finish { now_ms, live })
    }

    /// Every instance's output of `call`; each shadowing candidate is handed `shadow` of it.
    fn outputs(
        &mut self,
        call: impl Fn(&mut Runner) -> Result<Output, RunnerError> + Send + Sync + 'static,
        shadow: impl Fn(Output) -> Work + Send + Sync + 'static,
    ) -> Result<Vec<(usize, Output)>, RunnerError> {
        let results = each(&self.workers, move |_, slot| {
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
    /// once per instance): what a checkpoint holds. It covers every sub-batch handed over.
    pub fn snapshot(&mut self) -> Result<KeyedStates, RunnerError> {
        let states = each(&self.workers, |_, slot| slot.runner.snapshot());
        let mut all = KeyedStates::default();
        for state in states {
            all.append(&state?);
        }
        Ok(all)
    }

    /// Start `candidate` beside every instance, each candidate instance restored from its live
    /// instance's snapshot (any candidate shadowing before is stopped). One that groups
    /// records by another key, or cannot take the state, is not started: its tally says why.
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
        let parallelism = self.workers.len();
        let (loaded, shared) = (candidate.loaded.clone(), tally.clone());
        let started = each(&self.workers, move |i, slot| {
            let name = format!("candidate {}", name(i, parallelism));
            let state = slot.runner.snapshot().map_err(|e| e.to_string())?;
            let runner = Runner::new(loaded.clone(), &name, state).map_err(|e| e.to_string())?;
            slot.shadow = Some(ShadowFeed::start(runner, name, shared.clone()).map_err(|e| e.to_string())?);
            Ok::<_, String>(())
        });
        if let Some(why) = started.into_iter().find_map(Result::err) {
            self.unshadow();
            tally.stopped(format!("it cannot start from the live state: {why}"));
        }
    }

    /// Stop every candidate instance.
    pub fn unshadow(&mut self) {
        each(&self.workers, |_, slot| slot.shadow = None);
    }

    /// Switch every instance to `next`, carrying each one's state: snapshot the old instance,
    /// restore into a new one, all instances side by side, each after what it was sent. Every
    /// new instance is made before any switches, so a version that cannot restore the state is
    /// never switched to (the error says why); nor is one that groups records by another key
    /// (its state would belong to other instances). Returns the operator replaced and each
    /// instance's pause.
    pub fn swap(&mut self, next: LoadedOperator) -> Result<(LoadedOperator, Vec<Duration>), SwapError> {
        if next.grouping() != self.loaded.grouping() {
            return Err(SwapError::Grouping {
                running: self.loaded.grouping().clone(),
                next: next.grouping().clone(),
            });
        }
        let parallelism = self.workers.len();
        let (snapshot_every, on_error) = (self.snapshot_every, self.on_error);
        let version = next.clone();
        // The new instances are made here, while the instances go on with what they were sent:
        // an instance pauses only to snapshot and restore.
        let fresh = (0..parallelism).map(|_| next.instantiate()).collect::<Result<Vec<_>, _>>();
        let fresh = fresh.map_err(RunnerError::from)?;
        let prepared = each_with(&self.workers, fresh, move |i, slot, instance| {
            let started = Instant::now();
            let state = slot.runner.snapshot()?;
            let runner = Runner::restored(version.clone(), instance, &name(i, parallelism), state)?
                .with_snapshot_every(snapshot_every)
                .with_on_error(on_error);
            Ok::<_, RunnerError>((runner, started.elapsed()))
        });
        let prepared = prepared.into_iter().collect::<Result<Vec<_>, _>>()?;
        let (runners, pauses): (Vec<_>, Vec<_>) = prepared.into_iter().unzip();
        let replaced = each_with(&self.workers, runners, |_, slot, runner| {
            slot.restarts_seen = 0;
            // A candidate compared with the version replaced compares with nothing now.
            slot.shadow = None;
            std::mem::replace(&mut slot.runner, runner)
        });
        // The old instances are torn down on a thread of their own, not on the instances'
        // threads (after their pause) nor on the pipeline's (before the next batch is routed).
        self.teardown.get_or_insert_with(Teardown::start).drop_later(replaced);
        Ok((std::mem::replace(&mut self.loaded, next), pauses))
    }
}

/// No instance's thread is left to send a result.
fn stopped() -> PipelineError {
    PipelineError::Task("every operator instance stopped".into())
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
