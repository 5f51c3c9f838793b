//! One operator instance of the pipeline and the sub-batches routed to it in a step: processes
//! them in order, and counts its outputs and restarts; hands a copy of each to the candidate
//! shadowing it, if any.

use std::collections::VecDeque;

use weir_contract::OwnedBatch;

use super::Done;
use crate::metrics::InstanceMetrics;
use crate::operator::{CallError, Runner, RunnerError};
use crate::pipeline::shadow::{ShadowFeed, Work};

/// One instance and the sub-batches routed to it in this step.
pub(super) struct Slot {
    pub(super) runner: Runner,
    pub(super) queue: VecDeque<OwnedBatch>,
    pub(super) metrics: InstanceMetrics,
    pub(super) restarts_seen: u64,
    /// The candidate instance shadowing this one.
    pub(super) shadow: Option<ShadowFeed>,
}

impl Slot {
    /// `runner`, counting into `metrics`, with nothing queued.
    pub(super) fn new(runner: Runner, metrics: InstanceMetrics) -> Self {
        Self { runner, queue: VecDeque::new(), metrics, restarts_seen: 0, shadow: None }
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

    /// Process the queue in order. On probation, a sub-batch the instance fails stays at the
    /// head of the queue and the failure is returned, for the caller to decide.
    pub(super) fn run(&mut self, probation: bool) -> Result<(Vec<Done>, Option<CallError>), RunnerError> {
        let mut done = Vec::with_capacity(self.queue.len());
        while let Some(mut batch) = self.queue.pop_front() {
            let shard = batch.shard_id.clone();
            let copy = self.shadow.as_ref().map(|_| batch.clone());
            let processed = if probation {
                match self.runner.try_process(&mut batch)? {
                    Ok(processed) => processed,
                    Err(error) => {
                        self.queue.push_front(batch);
                        self.count_restarts();
                        return Ok((done, Some(error)));
                    }
                }
            } else {
                self.runner.process(&mut batch)?
            };
            self.count_restarts();
            if let Some(copy) = copy {
                let (live, refused) = (processed.output.clone(), processed.dead_letters.clone());
                self.shadow(|| Work::Batch { batch: copy, live, refused });
            }
            self.metrics.records_out.inc_by(processed.output.len() as u64);
            done.push(Done { shard, processed });
        }
        Ok((done, None))
    }
}
