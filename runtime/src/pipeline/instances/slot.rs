//! One operator instance of the pipeline and the sub-batches sent to it: processes them in
//! order, sending each result back as it is ready, and counts its outputs and restarts; hands
//! a copy of each to the candidate shadowing it, if any.

use std::collections::VecDeque;
use std::time::Instant;

use tokio::sync::mpsc::UnboundedSender;
use weir_contract::OwnedBatch;

use super::{Done, Finished};
use crate::metrics::InstanceMetrics;
use crate::operator::Runner;
use crate::pipeline::shadow::{ShadowFeed, Work};

/// A sub-batch sent to an instance, and what comes back with its result.
pub(super) struct Queued {
    pub(super) part: OwnedBatch,
    /// A new version is on probation: a failure is held back for the pipeline to decide on.
    pub(super) probation: bool,
    /// When the source had read it.
    pub(super) read_at: Option<Instant>,
}

/// One instance and the sub-batches sent to it and not processed yet.
pub(super) struct Slot {
    /// Its number, from 0.
    pub(super) instance: usize,
    pub(super) runner: Runner,
    /// Where its results go.
    pub(super) results: UnboundedSender<Finished>,
    pub(super) queue: VecDeque<Queued>,
    /// A sub-batch failed on probation (at the head of the queue): nothing more is processed
    /// until the pipeline decided ([`Slot::release`]).
    pub(super) held: bool,
    pub(super) metrics: InstanceMetrics,
    pub(super) restarts_seen: u64,
    /// The candidate instance shadowing this one.
    pub(super) shadow: Option<ShadowFeed>,
}

impl Slot {
    /// Instance `instance`, `runner`, counting into `metrics` and sending its results to
    /// `results`, with nothing queued.
    pub(super) fn new(
        instance: usize,
        runner: Runner,
        metrics: InstanceMetrics,
        results: UnboundedSender<Finished>,
    ) -> Self {
        Self {
            instance,
            runner,
            results,
            queue: VecDeque::new(),
            held: false,
            metrics,
            restarts_seen: 0,
            shadow: None,
        }
    }

    /// Hand `work` to the shadowing candidate, if any; forget it once it stopped.
    pub(super) fn shadow(&mut self, work: impl FnOnce() -> Work) {
        if let Some(feed) = &self.shadow
            && !feed.send(work())
        {
            self.shadow = None;
        }
    }

    /// Count restarts of the instance since the last look.
    pub(super) fn count_restarts(&mut self) {
        let restarts = self.runner.stats().restarts;
        if restarts > self.restarts_seen {
            self.metrics.operator_restarts.inc_by(restarts - self.restarts_seen);
            self.restarts_seen = restarts;
        }
    }

    /// Process the queue in order, each result sent back as soon as it is ready. A
    /// sub-batch failed on probation stays at the head of the queue and holds it: the failure is
    /// sent for the pipeline to decide on. An error beyond recovery is sent and holds it too
    /// (the run ends).
    pub(super) fn run(&mut self) {
        while !self.held {
            let Some(Queued { mut part, probation, read_at }) = self.queue.pop_front() else { return };
            let shard = part.shard_id.clone();
            let copy = self.shadow.as_ref().map(|_| part.clone());
            let processed = if probation {
                self.runner.try_process(&mut part)
            } else {
                self.runner.process(&mut part).map(Ok)
            };
            self.count_restarts();
            let processed = match processed {
                Ok(Ok(processed)) => processed,
                Ok(Err(error)) => {
                    self.queue.push_front(Queued { part, probation, read_at });
                    self.held = true;
                    let _ = self.results.send(Finished::Failed(self.instance, error));
                    return;
                }
                Err(error) => {
                    self.held = true;
                    let _ = self.results.send(Finished::Error(error));
                    return;
                }
            };
            if let Some(copy) = copy {
                let (live, refused) = (processed.output.clone(), processed.dead_letters.clone());
                self.shadow(|| Work::Batch { batch: copy, live, refused });
            }
            self.metrics.records_out.inc_by(processed.output.len() as u64);
            let _ = self.results.send(Finished::Done(self.instance, Done { shard, processed, read_at }));
        }
    }

    /// The pipeline decided on a failure on probation: process what the queue holds, not on
    /// probation (the version that failed was kept or rolled back by then).
    pub(super) fn release(&mut self) {
        self.held = false;
        self.queue.iter_mut().for_each(|queued| queued.probation = false);
        self.run();
    }
}
