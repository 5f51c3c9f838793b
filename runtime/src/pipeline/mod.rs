//! The data path of `weir run`: source task (each record routed by grouping key as it is read:
//! [`crate::routing`], [`crate::source::routed`]) -> operator instances, each on its own
//! thread ([`instances`]) -> sink task, with the event-time watermark made of every shard's
//! progress ([`watermark`]), processing-time ticks to every instance, version switches and
//! rollbacks ([`switch`]), dead letters, metrics and shutdown.
//!
//! The pipeline takes the batches the source has ready (up to [`STEP_BATCHES`] at a time) and
//! hands each instance its sub-batches; each instance works through its own as they come and
//! sends each result back, which the pipeline sends on, so no instance waits for another. It
//! waits for all of them only where every instance must be still: ticks, checkpoints, swaps,
//! and while a new version is on probation. Channels between the tasks are bounded, and so is
//! the work handed to the instances ([`IN_FLIGHT_BATCHES`]), so a slow sink slows the
//! operators, which slows the source: memory stays flat.

pub mod checkpointing;
pub mod flow;
pub mod instances;
pub mod progress;
mod run;
mod runtime;
pub mod shadow;
pub mod spread;
pub mod switch;
pub mod watermark;

use std::time::Duration;

use crate::checkpoint::{Checkpoint, CheckpointError, CheckpointStore};
use crate::metrics::StatsFormat;
use crate::operator::{DEFAULT_SNAPSHOT_EVERY, OnOperatorError, RunnerError};
use crate::sink::{SinkError, WriteDeadline};
use crate::source::SourceError;
pub use run::Pipeline;
pub use runtime::runtime;

/// Batches in flight between source and operators, and outputs between operators and sink:
/// enough that shard readers keep reading while the operators work (4 measured 0.75x of a bare
/// GetRecords loop draining 8 shards, 16 measured 0.86x), few enough to hold memory flat.
const CHANNEL_BATCHES: usize = 16;

/// Source batches the pipeline takes at a time at most (each with the same watermark): what
/// the channel holds.
pub const STEP_BATCHES: usize = CHANNEL_BATCHES;

/// Sub-batches handed to each instance and not yet collected, at most, before the pipeline
/// takes more from the source: as many as it takes at a time, so an instance has work queued
/// while the pipeline takes the next batches.
pub const IN_FLIGHT_BATCHES: usize = STEP_BATCHES;

/// How the pipeline runs.
#[derive(Clone, Debug)]
pub struct PipelineOptions {
    /// Operator instances (records are routed to them by grouping key).
    pub parallelism: usize,
    /// How often processing time is passed to the operator when no batch arrives.
    pub tick_interval: Duration,
    /// How often the counters are summarised in the log.
    pub stats_interval: Duration,
    /// Operator calls between snapshots of each instance.
    pub snapshot_every: usize,
    /// What to do with a record the operator fails on.
    pub on_operator_error: OnOperatorError,
    /// How the counters are reported every `stats_interval`.
    pub stats_format: StatsFormat,
    /// A lease group worker's write deadline: once passed, the sink refuses to write (None:
    /// no lease group).
    pub write_deadline: Option<WriteDeadline>,
    /// Refuse records whose partition key is not their grouping key (a lease group's workers
    /// each read whole shards).
    pub partition_keyed: bool,
    /// The children of a shard read to its end are read by another run (a lease group's next
    /// term, or another worker), which goes on with its keys' state from the checkpoint. The
    /// end of the input then flushes no pending window if a shard ended in this run: those
    /// windows' later trades are on the children.
    pub children_read_elsewhere: bool,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            parallelism: 1,
            tick_interval: Duration::from_secs(1),
            stats_interval: Duration::from_secs(10),
            snapshot_every: DEFAULT_SNAPSHOT_EVERY,
            on_operator_error: OnOperatorError::default(),
            stats_format: StatsFormat::Log,
            write_deadline: None,
            partition_keyed: false,
            children_read_elsewhere: false,
        }
    }
}

/// Checkpointing of a run: where, how often, and what to go on from.
pub struct Checkpoints {
    /// Where checkpoints are written.
    pub store: Box<dyn CheckpointStore>,
    /// How often one is taken.
    pub interval: Duration,
    /// What is read (`kinesis://STREAM`), as checkpoints name it.
    pub source: String,
    /// The checkpoint to go on from (None: a fresh start).
    pub restored: Option<Checkpoint>,
}

/// Why the pipeline stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The sink or the dead-letter destination failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The operator failed beyond recovery.
    #[error(transparent)]
    Operator(#[from] RunnerError),
    /// The instances' threads could not be started.
    #[error("cannot start the operator threads: {0}")]
    Threads(String),
    /// A checkpoint could not be written, or another process writes to the same location.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A lease group's worker read a record whose partition key is not its grouping key.
    #[error(transparent)]
    Unkeyed(#[from] spread::Unkeyed),
    /// A task panicked.
    #[error("internal error: a pipeline task panicked: {0}")]
    Task(String),
}

/// How the run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The input ended and every pending result was written.
    EndOfInput,
    /// Stopped by the shutdown signal: reading stopped, what was read was processed and
    /// written, and (with checkpoints) a final checkpoint holds the results still pending.
    Stopped,
}

/// Run operator calls: they may block this thread inside the guest's WASI calls (a guest
/// writing to stderr, as a panicking one does, goes through wasmtime-wasi's synchronous
/// bindings, which block on the runtime), so the runtime is told this thread blocks.
pub(crate) fn guest<T>(calls: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(calls)
}

async fn join<T>(task: tokio::task::JoinHandle<T>) -> Result<T, PipelineError> {
    task.await.map_err(|e| PipelineError::Task(e.to_string()))
}
