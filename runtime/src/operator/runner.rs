//! One operator instance of the pipeline (it owns a range of key groups), kept alive through
//! failures.
//!
//! Every `snapshot_every` calls, or sooner once the calls since hold [`SNAPSHOT_AFTER_BYTES`] of
//! records, the runner snapshots the instance and forgets the calls before; it keeps the calls
//! since (their batches are moved, not copied). When a call traps or fails,
//! the instance's store is dropped and a fresh instance is restored from the snapshot, with the
//! calls since replayed (their outputs were already delivered and are discarded). A failed
//! batch is then processed one record at a time from a snapshot before each, so that only the
//! records that cause the failure go to the dead-letter destination, with the reason, and every
//! other record counts. Nothing is lost and nothing is counted twice.

use weir_contract::{DeadLetter, KeyedStates, Output, OwnedBatch};

use super::{CallError, Instance, LoadError, LoadedOperator};

/// Calls between snapshots, by default: in `perf` of `weir run` on the reference workload a
/// snapshot of 1,000 keys took about as long as one or two calls of 1,024 trades, so once in
/// 53-64 calls is 1.4-1.6% of the CPU samples, while the replay log stays a few MiB.
pub const DEFAULT_SNAPSHOT_EVERY: usize = 64;

/// Record bytes kept for replay after which the runner snapshots, whatever the call count: with
/// many instances, each one's replay log would otherwise hold up to 64 full batches, a bound
/// that grows with the parallelism. At 1 MiB a log of 1,024-trade batches (about 78 KB each)
/// was cut every 14 calls, not 64, and the snapshots took 5-6% of `weir run`'s CPU samples
/// with 1,000 tickers; at 4 MiB (53 calls) they take 1.4-1.6% (BENCHMARKS.md, issue 26, fourth
/// pass), for a log of at most 4 MiB per instance instead of 1.
pub const SNAPSHOT_AFTER_BYTES: usize = 4 << 20;

/// The operator failed in a way the runner cannot work around.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// A fresh instance could not be made.
    #[error(transparent)]
    Instantiate(#[from] LoadError),
    /// The operator failed again on a retry, or while being restored.
    #[error("operator {origin} {during} on {instance}: {error}")]
    Operator {
        /// The component.
        origin: String,
        /// Which call.
        during: &'static str,
        /// The instance (`instance 2 of 3`).
        instance: String,
        /// What happened.
        error: CallError,
    },
    /// The operator failed on a record, and `--on-operator-error halt` says stop.
    #[error(transparent)]
    Halted(Box<Halted>),
}

/// What to do with a record the operator fails on (traps, errors, or runs into a limit on).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnOperatorError {
    /// Send it to the dead-letter destination with the reason and go on.
    #[default]
    DeadLetter,
    /// Stop with an error naming it; nothing after it is processed, the last checkpoint holds.
    Halt,
}

/// The record an operator failed on, under `--on-operator-error halt`.
#[derive(Debug, thiserror::Error)]
#[error(
    "operator {origin} {error} on a record of {shard} (partition key {key:?}) on {instance}; --on-operator-error halt stops here, with nothing after it processed and the last checkpoint holding everything before: fix the operator or the record and start again, or run with --on-operator-error dead-letter to set such records aside"
)]
pub struct Halted {
    /// The component.
    pub origin: String,
    /// The instance.
    pub instance: String,
    /// The record's shard.
    pub shard: String,
    /// The record's partition key.
    pub key: String,
    /// What happened.
    pub error: CallError,
}

/// What one batch produced.
#[derive(Debug, Default)]
pub struct Processed {
    /// Output records.
    pub output: Output,
    /// Input records refused by the operator or isolated as the cause of a failure.
    pub dead_letters: Vec<DeadLetter>,
}

enum Call {
    Process(OwnedBatch),
    Tick { now_ms: i64, watermark_ms: i64 },
}

/// Counts of what went wrong, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunnerStats {
    /// Instances replaced after a trap or failure.
    pub restarts: u64,
    /// Records sent to the dead-letter destination because the operator failed on them.
    pub isolated: u64,
}

/// One operator instance, its last snapshot and the calls since.
pub struct Runner {
    loaded: LoadedOperator,
    name: String,
    instance: Instance,
    checkpoint: KeyedStates,
    log: Vec<Call>,
    log_bytes: usize,
    spare: Vec<OwnedBatch>,
    snapshot_every: usize,
    on_error: OnOperatorError,
    stats: RunnerStats,
}

impl Runner {
    /// A fresh instance of `loaded` named `name` (for messages), restored from `state` (empty
    /// for a new start).
    pub fn new(loaded: LoadedOperator, name: &str, state: KeyedStates) -> Result<Self, RunnerError> {
        let instance = loaded.instantiate()?;
        Self::restored(loaded, instance, name, state)
    }

    /// [`Runner::new`] with `instance`, a fresh instance of `loaded` made beforehand (a swap
    /// makes them before any instance pauses, so that only the snapshot and the restore happen
    /// while an instance's records wait).
    pub fn restored(
        loaded: LoadedOperator,
        mut instance: Instance,
        name: &str,
        mut state: KeyedStates,
    ) -> Result<Self, RunnerError> {
        if !state.is_empty() {
            instance.restore(&mut state).map_err(|error| RunnerError::Operator {
                origin: loaded.artifact().origin.clone(),
                during: "failed to restore its state",
                instance: name.to_string(),
                error,
            })?;
        }
        Ok(Self {
            loaded,
            name: name.to_string(),
            instance,
            checkpoint: state,
            log: Vec::new(),
            log_bytes: 0,
            spare: Vec::new(),
            snapshot_every: DEFAULT_SNAPSHOT_EVERY,
            on_error: OnOperatorError::default(),
            stats: RunnerStats::default(),
        })
    }

    /// Snapshot after this many calls (at least 1).
    pub fn with_snapshot_every(mut self, calls: usize) -> Self {
        self.snapshot_every = calls.max(1);
        self
    }

    /// What to do with a record the operator fails on.
    pub fn with_on_error(mut self, on_error: OnOperatorError) -> Self {
        self.on_error = on_error;
        self
    }

    /// What went wrong so far.
    pub fn stats(&self) -> RunnerStats {
        self.stats
    }

    fn error(&self, during: &'static str, error: CallError) -> RunnerError {
        RunnerError::Operator {
            origin: self.loaded.artifact().origin.clone(),
            during,
            instance: self.name.clone(),
            error,
        }
    }

    /// The operator this instance runs.
    pub fn loaded(&self) -> &LoadedOperator {
        &self.loaded
    }

    /// Process `batch`. Its buffers are kept for replay; `batch` comes back empty, ready to be
    /// filled again.
    pub fn process(&mut self, batch: &mut OwnedBatch) -> Result<Processed, RunnerError> {
        match self.try_process(batch)? {
            Ok(processed) => Ok(processed),
            Err(error) => {
                tracing::warn!(
                    instance = %self.name,
                    operator = %self.loaded.artifact().origin,
                    "operator {} on a batch of {} records; restarted it from its last snapshot, retrying the records one by one",
                    error, batch.len()
                );
                let processed = self.isolate(batch)?;
                self.log.clear();
                self.checkpoint_now()?;
                self.take_batch(batch);
                Ok(processed)
            }
        }
    }

    /// Process `batch`, or, when the operator fails on it, restart the instance at its state
    /// before the batch and hand the failure back with `batch` untouched, so that the caller
    /// can decide what to do with it (retry record by record, or give it to another version).
    pub fn try_process(
        &mut self,
        batch: &mut OwnedBatch,
    ) -> Result<Result<Processed, CallError>, RunnerError> {
        match self.instance.process(batch) {
            Ok(mut output) => {
                let dead_letters = resolve_rejections(batch, &mut output);
                let taken = self.take_batch(batch);
                self.log_bytes += taken.bytes.len();
                self.log.push(Call::Process(taken));
                self.maybe_checkpoint()?;
                Ok(Ok(Processed { output, dead_letters }))
            }
            Err(error) => {
                self.recover()?;
                Ok(Err(error))
            }
        }
    }

    /// Take `batch`'s contents, leaving it empty (with recycled buffers) for the same shard.
    fn take_batch(&mut self, batch: &mut OwnedBatch) -> OwnedBatch {
        let mut fresh = self.spare.pop().unwrap_or_default();
        fresh.clear();
        fresh.shard_id.clone_from(&batch.shard_id);
        fresh.now_ms = batch.now_ms;
        fresh.watermark_ms = batch.watermark_ms;
        std::mem::replace(batch, fresh)
    }

    /// Processing time advanced to `now_ms`; the watermark is `watermark_ms`.
    pub fn tick(&mut self, now_ms: i64, watermark_ms: i64) -> Result<Output, RunnerError> {
        let output = self.retry_once("failed in tick", |i| i.tick(now_ms, watermark_ms))?;
        self.log.push(Call::Tick { now_ms, watermark_ms });
        self.maybe_checkpoint()?;
        Ok(output)
    }

    /// The input ended.
    pub fn finish(&mut self, now_ms: i64) -> Result<Output, RunnerError> {
        self.retry_once("failed at the end of input", |i| i.finish(now_ms))
    }

    /// The operator's keyed state now.
    pub fn snapshot(&mut self) -> Result<KeyedStates, RunnerError> {
        self.retry_once("failed to snapshot", Instance::snapshot)
    }

    /// Run `call`; after a failure, recover and run it once more.
    fn retry_once<T>(
        &mut self,
        during: &'static str,
        mut call: impl FnMut(&mut Instance) -> Result<T, CallError>,
    ) -> Result<T, RunnerError> {
        match call(&mut self.instance) {
            Ok(v) => Ok(v),
            Err(first) => {
                tracing::warn!(instance = %self.name, operator = %self.loaded.artifact().origin,
                    "operator {} ({during}); restarting it from its last snapshot and retrying", first);
                self.recover()?;
                call(&mut self.instance).map_err(|e| self.error(during, e))
            }
        }
    }

    fn maybe_checkpoint(&mut self) -> Result<(), RunnerError> {
        if self.log.len() >= self.snapshot_every || self.log_bytes >= SNAPSHOT_AFTER_BYTES {
            self.checkpoint_now()
        } else {
            Ok(())
        }
    }

    fn checkpoint_now(&mut self) -> Result<(), RunnerError> {
        self.checkpoint = self.snapshot()?;
        self.log_bytes = 0;
        for call in self.log.drain(..) {
            if let Call::Process(batch) = call
                && self.spare.len() < 4
            {
                self.spare.push(batch);
            }
        }
        Ok(())
    }

    /// Replace the instance with a fresh one at the state after the last successful call.
    fn recover(&mut self) -> Result<(), RunnerError> {
        self.stats.restarts += 1;
        let mut instance = self.loaded.instantiate()?;
        let mut checkpoint = std::mem::take(&mut self.checkpoint);
        let restored = instance.restore(&mut checkpoint);
        self.checkpoint = checkpoint;
        restored.map_err(|e| self.error("failed to restore its last snapshot after a restart", e))?;
        for call in &mut self.log {
            let replayed = match call {
                Call::Process(batch) => instance.process(batch).map(drop),
                Call::Tick { now_ms, watermark_ms } => instance.tick(*now_ms, *watermark_ms).map(drop),
            };
            replayed.map_err(|e| RunnerError::Operator {
                origin: self.loaded.artifact().origin.clone(),
                during: "failed while replaying calls that had succeeded before (is it deterministic?)",
                instance: self.name.clone(),
                error: e,
            })?;
        }
        self.instance = instance;
        Ok(())
    }

    /// Process `batch` one record at a time; a record the operator fails on becomes a dead
    /// letter and the instance goes back to its state before that record.
    fn isolate(&mut self, batch: &OwnedBatch) -> Result<Processed, RunnerError> {
        let mut processed = Processed::default();
        for index in 0..batch.len() {
            let mut before = self.instance.snapshot().map_err(|e| self.error("failed to snapshot", e))?;
            let mut single = batch.slice(index..index + 1);
            match self.instance.process(&mut single) {
                Ok(mut output) => {
                    processed.dead_letters.extend(resolve_rejections(&single, &mut output));
                    processed.output.append(&output);
                }
                Err(error) => {
                    if self.on_error == OnOperatorError::Halt {
                        let view = single.view();
                        let key =
                            view.records().next().map(|r| r.partition_key.to_string()).unwrap_or_default();
                        return Err(RunnerError::Halted(Box::new(Halted {
                            origin: self.loaded.artifact().origin.clone(),
                            instance: self.name.clone(),
                            shard: batch.shard_id.clone(),
                            key,
                            error,
                        })));
                    }
                    self.stats.isolated += 1;
                    if let Some(record) = single.view().records().next() {
                        let mut letter = DeadLetter::new(&record, format!("operator {}", error));
                        letter.sequence_number = single.position(0);
                        processed.dead_letters.push(letter);
                    }
                    let mut instance = self.loaded.instantiate()?;
                    instance
                        .restore(&mut before)
                        .map_err(|e| self.error("failed to restore its state", e))?;
                    self.instance = instance;
                }
            }
        }
        Ok(processed)
    }
}

/// Turn the operator's rejections into dead letters carrying the records.
fn resolve_rejections(batch: &OwnedBatch, output: &mut Output) -> Vec<DeadLetter> {
    if output.rejected.is_empty() {
        return Vec::new();
    }
    let view = batch.view();
    let records: Vec<_> = view.records().collect();
    output
        .rejected
        .drain(..)
        .map(|r| match records.get(r.index as usize) {
            Some(record) => DeadLetter {
                sequence_number: batch.position(r.index as usize),
                ..DeadLetter::new(record, r.reason)
            },
            None => DeadLetter {
                sequence_number: None,
                partition_key: String::new(),
                data: Vec::new(),
                arrival_time_ms: 0,
                shard_id: batch.shard_id.clone(),
                reason: format!(
                    "operator rejected record {} of a batch of {}: {}",
                    r.index,
                    records.len(),
                    r.reason
                ),
            },
        })
        .collect()
}
