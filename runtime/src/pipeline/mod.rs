//! The data path of `weir run`: source task -> routing by grouping key -> operator instances,
//! each on its own thread ([`instances`], [`keys`]) -> sink task, with the event-time
//! watermark made of every shard's progress ([`watermark`]), processing-time ticks to every
//! instance, version switches and rollbacks ([`switch`]), dead letters, metrics and shutdown.
//!
//! The pipeline works in steps: it takes the batches the source has ready (up to
//! [`STEP_BATCHES`]), routes them, lets every instance process its share side by side, then
//! sends the outputs on. Channels between the tasks are bounded, so a slow sink slows the
//! operators, which slows the source: memory stays flat.

pub mod checkpointing;
pub mod flow;
pub mod instances;
pub mod keys;
pub mod progress;
pub mod spread;
pub mod switch;
pub mod watermark;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::checkpoint::{Checkpoint, CheckpointError, CheckpointStore};
use crate::deployment::Versions;
use crate::metrics::{Metrics, StatsFormat};
use crate::operator::{DEFAULT_SNAPSHOT_EVERY, OnOperatorError, RunnerError};
use crate::sink::{DeadLetterWriter, Outgoing, Sink, SinkError, WriteDeadline};
use crate::source::{Source, SourceError};
use checkpointing::Writer;
use flow::Flow;
use instances::Instances;
use progress::Progress;
use watermark::Watermarks;

/// Batches in flight between source and operators, and outputs between operators and sink:
/// enough that shard readers keep reading while the operators work (4 measured 0.75x of a bare
/// GetRecords loop draining 8 shards, 16 measured 0.86x), few enough to hold memory flat.
const CHANNEL_BATCHES: usize = 16;

/// Source batches one step takes at most: what the channel holds, so that a backlog is
/// worked through in steps large enough to keep every instance busy.
pub const STEP_BATCHES: usize = CHANNEL_BATCHES;

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

/// Run `source` through `options.parallelism` instances of the operator into `sink` until the
/// input ends or `shutdown` resolves, switching versions as `operators` delivers them, taking
/// checkpoints if asked to (restoring the state of `checkpoints.restored` first). Needs tokio's
/// multi-threaded runtime: operator calls run in `block_in_place`.
///
/// On `shutdown` it stops reading, processes the batches already read, writes every output,
/// and takes a final checkpoint. On an error it still lets the sink write what it was given
/// before reporting the error.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    source: Source,
    versions: impl Into<Versions>,
    sink: Sink,
    dead_letters: DeadLetterWriter,
    metrics: Arc<Metrics>,
    options: PipelineOptions,
    checkpoints: Option<Checkpoints>,
    shutdown: impl Future<Output = ()>,
) -> Result<Ending, PipelineError> {
    run_term(source, versions.into(), sink, dead_letters, metrics, options, checkpoints, shutdown).await.0
}

/// [`run`], handing the operator versions back however it ended: a lease group's worker runs
/// the pipeline in terms, one per set of shards, with one operator (and its watch) throughout.
#[allow(clippy::too_many_arguments)]
pub async fn run_term(
    source: Source,
    versions: Versions,
    sink: Sink,
    dead_letters: DeadLetterWriter,
    metrics: Arc<Metrics>,
    options: PipelineOptions,
    checkpoints: Option<Checkpoints>,
    shutdown: impl Future<Output = ()>,
) -> (Result<Ending, PipelineError>, Versions) {
    let (restored, first_id, writer, interval, source_name) = match checkpoints {
        Some(c) => {
            let first_id = c.store.next_id();
            (c.restored, first_id, Some(Writer::start(c.store, metrics.clone())), Some(c.interval), c.source)
        }
        None => (None, 1, None, None, String::new()),
    };
    let (writer, mut writer_task) = writer.unzip();
    let mut writer_ended = false;
    let (state, restored) = match restored {
        Some(Checkpoint { meta, state }) => (state, Some(meta)),
        None => (Default::default(), None),
    };
    let instances = guest(|| {
        let runners = (options.snapshot_every, options.on_operator_error);
        Instances::new(versions.initial(), options.parallelism, runners, &state, &metrics)
    });
    let instances = match instances {
        Ok(instances) => instances,
        Err(e) => return (Err(e), versions),
    };
    drop(state);
    let mut watermarks = Watermarks::new();
    let (progress, next_checkpoint, records_out) = match restored {
        Some(meta) => {
            metrics.checkpoints.last_id.set(meta.id as i64);
            watermarks.restore(
                meta.watermark_ms,
                meta.shards.iter().filter_map(|(id, s)| Some((id.clone(), s.event_time_ms?))),
            );
            if options.children_read_elsewhere {
                // A lease term can hold a shard its last owner read to its end but did not
                // give up (it died first): the shard is not read again, and its keys' windows
                // must not fire past it while other shards run ahead.
                for (id, shard) in meta.shards.iter().filter(|(_, s)| s.finished) {
                    watermarks
                        .finished_before(id, shard.event_time_ms.unwrap_or(weir_contract::NO_WATERMARK));
                }
            }
            (Progress::restored(meta.shards), first_id.max(meta.id + 1), meta.records_out)
        }
        None => (Progress::default(), first_id, 0),
    };
    let (event_tx, mut events) = mpsc::channel(CHANNEL_BATCHES);
    let mut source_task = Some(tokio::spawn(source.run(event_tx)));
    let (out_tx, out_rx) = mpsc::channel::<Outgoing>(CHANNEL_BATCHES);
    let refusal = sink.refusal();
    let spread = match flow_grouping(&versions) {
        weir_contract::Grouping::JsonField(field) => {
            Some(spread::Spread::new(keys::Field::new(field.as_bytes()), options.partition_keyed))
        }
        weir_contract::Grouping::PartitionKey => None,
    };
    let sink_task = tokio::spawn(sink.run_until(out_rx, options.write_deadline.clone()));
    let mut flow = Flow {
        instances,
        versions,
        watermarks,
        progress,
        dead_letters,
        metrics: metrics.clone(),
        out_tx,
        source_name,
        next_checkpoint,
        records_out,
        refusal,
        spread,
        shards_ended: 0,
    };

    let mut ticks = tokio::time::interval(options.tick_interval);
    let mut stats = tokio::time::interval(options.stats_interval);
    let mut checkpoint_ticks = tokio::time::interval(interval.unwrap_or(Duration::from_secs(3600)));
    for timer in [&mut ticks, &mut stats, &mut checkpoint_ticks] {
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    }
    stats.tick().await;
    checkpoint_ticks.tick().await;
    let (mut last_stats, mut last_at) = (metrics.snapshot(), Instant::now());
    tokio::pin!(shutdown);

    let result: Result<Ending, PipelineError> = async {
        let ending = loop {
            // Timers first: each is ready at most once per interval, so a backlog of batches
            // cannot starve them, and they cannot starve the batches.
            tokio::select! {
                biased;
                () = &mut shutdown => break Ending::Stopped,
                Some(ended) = async { Some(writer_task.as_mut()?.await) }, if writer_task.is_some() => {
                    // It only ends on its own with an error (or a panic).
                    writer_ended = true;
                    checkpointing::outcome(ended)?;
                    return Err(PipelineError::Task("the checkpoint writer stopped".into()));
                }
                _ = checkpoint_ticks.tick(), if writer.is_some() => {
                    if let Some(w) = &writer {
                        if w.ready() { flow.cut(w).await?; } else { metrics.checkpoints.skipped.inc(); }
                    }
                }
                next = flow.versions.next_version() => {
                    guest(|| switch::switch(&mut flow.instances, &mut flow.versions, next, &metrics));
                }
                _ = ticks.tick() => flow.tick().await?,
                _ = stats.tick() => {
                    let now = metrics.snapshot();
                    options.stats_format.report(&now, &last_stats, last_at.elapsed());
                    (last_stats, last_at) = (now, Instant::now());
                }
                event = events.recv() => match event {
                    Some(first) => flow.step_from(first, &mut events).await?,
                    None => {
                        // The source is done: an error ends the run, the end of input finishes
                        // it: every pending window flushed, then a last checkpoint holding the
                        // positions at the end and what the flush left, so that a run going on
                        // from it (or a worker taking a lease over) does not flush them again.
                        // Not so if a shard ended whose children another run reads: the
                        // checkpoint hands its pending windows to them.
                        if let Some(task) = source_task.take() {
                            join(task).await??;
                        }
                        if !(options.children_read_elsewhere && flow.shards_ended > 0) {
                            flow.finish().await?;
                        }
                        if let Some(w) = &writer {
                            flow.cut(w).await?;
                        }
                        break Ending::EndOfInput;
                    }
                },
            }
            if flow.out_tx.is_closed() {
                // The sink stopped: its error is reported below.
                break Ending::Stopped;
            }
        };
        if ending == Ending::Stopped && !flow.out_tx.is_closed() {
            // Stop reading; process what was read; a last checkpoint holds the rest.
            if let Some(task) = source_task.take() {
                task.abort();
            }
            while let Some(event) = events.recv().await {
                flow.step_from(event, &mut events).await?;
            }
            if let Some(w) = &writer {
                flow.cut(w).await?;
            }
        }
        Ok(ending)
    }
    .await;

    // Whatever happened, the sink writes what it was given (an error is reported after it).
    if let Some(task) = source_task.take() {
        task.abort();
    }
    drop(events);
    let Flow { dead_letters, out_tx, versions, .. } = flow;
    drop(out_tx);
    let sunk = join(sink_task).await.and_then(|r| r.map_err(PipelineError::from));
    let lettered = dead_letters.close().await.map_err(PipelineError::from);
    drop(writer);
    let checkpointed = match writer_task.filter(|_| !writer_ended) {
        Some(task) => checkpointing::outcome(task.await).map_err(PipelineError::from),
        None => Ok(()),
    };
    if let StatsFormat::Emf(_) = &options.stats_format {
        options.stats_format.report(&metrics.snapshot(), &last_stats, last_at.elapsed());
    }
    let ended = result.and_then(|ending| {
        sunk?;
        lettered?;
        checkpointed?;
        Ok(ending)
    });
    (ended, versions)
}

/// The grouping key of the operator that runs first (a swap to another one is refused).
fn flow_grouping(versions: &Versions) -> weir_contract::Grouping {
    versions.initial().grouping().clone()
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
