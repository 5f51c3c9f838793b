//! The data path of `weir run`: source task -> routing by grouping key -> operator instances,
//! each on its own thread ([`instances`], [`keys`]) -> sink task, with the event-time
//! watermark made of every shard's progress ([`watermark`]), processing-time ticks to every
//! instance, version switches and rollbacks ([`switch`]), dead letters, metrics and shutdown.
//!
//! The pipeline works in steps: it takes the batches the source has ready (up to
//! [`STEP_BATCHES`]), routes them, lets every instance process its share side by side, then
//! sends the outputs on. Channels between the tasks are bounded, so a slow sink slows the
//! operators, which slows the source: memory stays flat.

pub mod instances;
pub mod keys;
pub mod switch;
pub mod watermark;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use weir_contract::{NO_WATERMARK, Output};

use crate::deployment::Versions;
use crate::metrics::{Metrics, StatsFormat};
use crate::operator::{DEFAULT_SNAPSHOT_EVERY, RunnerError};
use crate::sink::{DeadLetterWriter, Outgoing, Sink, SinkError};
use crate::source::{Source, SourceError, SourceEvent, now_ms};
use instances::{Done, Instances};
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
    /// How long a shard may deliver nothing before it stops holding back the watermark.
    pub idle_after: Duration,
    /// How often the counters are summarised in the log.
    pub stats_interval: Duration,
    /// Operator calls between snapshots of each instance.
    pub snapshot_every: usize,
    /// How the counters are reported every `stats_interval`.
    pub stats_format: StatsFormat,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            parallelism: 1,
            tick_interval: Duration::from_secs(1),
            idle_after: watermark::DEFAULT_IDLE_AFTER,
            stats_interval: Duration::from_secs(10),
            snapshot_every: DEFAULT_SNAPSHOT_EVERY,
            stats_format: StatsFormat::Log,
        }
    }
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
    /// A task panicked.
    #[error("internal error: a pipeline task panicked: {0}")]
    Task(String),
}

/// How the run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The input ended and every pending result was written.
    EndOfInput,
    /// Stopped by the shutdown signal; results pending in the operator were not emitted.
    Stopped,
}

/// Run `source` through `options.parallelism` instances of the operator into `sink` until the
/// input ends or `shutdown` resolves, switching versions as `operators` delivers them. Needs
/// tokio's multi-threaded runtime: operator calls run in `block_in_place`.
pub async fn run(
    source: Source,
    versions: impl Into<Versions>,
    sink: Sink,
    mut dead_letters: DeadLetterWriter,
    metrics: Arc<Metrics>,
    options: PipelineOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<Ending, PipelineError> {
    let mut versions = versions.into();
    let mut instances =
        guest(|| Instances::new(versions.initial(), options.parallelism, options.snapshot_every, &metrics))?;
    let (event_tx, mut events) = mpsc::channel(CHANNEL_BATCHES);
    let mut source_task = Some(tokio::spawn(source.run(event_tx)));
    let (out_tx, out_rx) = mpsc::channel::<Outgoing>(CHANNEL_BATCHES);
    let sink_task = tokio::spawn(sink.run(out_rx));
    let mut watermarks = Watermarks::new(options.idle_after);

    let mut ticks = tokio::time::interval(options.tick_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut stats = tokio::time::interval(options.stats_interval);
    stats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    stats.tick().await;
    let (mut last_stats, mut last_at) = (metrics.snapshot(), Instant::now());
    tokio::pin!(shutdown);

    let ending = loop {
        // Outputs of this step, and when the earliest input of the step was read.
        let (outputs, read_at): (Vec<Output>, Option<Instant>) = tokio::select! {
            biased;
            () = &mut shutdown => break Ending::Stopped,
            event = events.recv() => match event {
                Some(first) => {
                    let watermark = current_watermark(&mut watermarks, &metrics);
                    let (now, mut read_at, mut routed) = (now_ms(), None::<Instant>, 0);
                    let mut next = Some(first);
                    while let Some(event) = next.take() {
                        match event {
                            SourceEvent::Batch { mut batch, read_at: at } => {
                                batch.now_ms = now;
                                batch.watermark_ms = watermark;
                                metrics.shard(&batch.shard_id).records_in.inc_by(batch.len() as u64);
                                watermarks.delivered(&batch.shard_id, at);
                                read_at = Some(read_at.map_or(at, |r| r.min(at)));
                                instances.route(batch);
                                routed += 1;
                            }
                            SourceEvent::Started { shard, lineage } => {
                                watermarks.started(&shard, Instant::now());
                                if let Some(lineage) = lineage.filter(|l| !l.parents.is_empty()) {
                                    tracing::info!("shard {shard} starts after {}", lineage.parents.join(", "));
                                }
                                metrics.shards_reading.inc();
                            }
                            SourceEvent::Rejected(letter) => {
                                metrics.shard(&letter.shard_id).dead_letters.inc();
                                dead_letters.write(std::slice::from_ref(&letter))?;
                            }
                            SourceEvent::Ended { shard } => {
                                // The reader has logged it.
                                watermarks.ended(&shard);
                                metrics.reshards.inc();
                                metrics.shards_reading.dec();
                            }
                        }
                        if routed < STEP_BATCHES {
                            next = events.try_recv().ok();
                        }
                    }
                    if routed == 0 {
                        continue;
                    }
                    let done = guest(|| switch::step(&mut instances, &mut versions, &metrics))?;
                    metrics.batches.inc_by(routed as u64);
                    (finish_step(done, &mut watermarks, &mut dead_letters, &metrics)?, read_at)
                }
                None => {
                    // The source is done: an error ends the run, the end of input finishes it.
                    if let Some(task) = source_task.take() {
                        join(task).await??;
                    }
                    for (_, output) in guest(|| instances.finish(now_ms()))? {
                        let _ = out_tx.send(output.into()).await;
                    }
                    break Ending::EndOfInput;
                }
            },
            next = versions.next_version() => {
                guest(|| switch::switch(&mut instances, &mut versions, next, &metrics));
                continue;
            }
            _ = ticks.tick() => {
                let watermark = current_watermark(&mut watermarks, &metrics);
                let outputs = guest(|| instances.tick(now_ms(), watermark))?;
                (outputs.into_iter().map(|(_, o)| o).collect(), None)
            }
            _ = stats.tick() => {
                let now = metrics.snapshot();
                options.stats_format.report(&now, &last_stats, last_at.elapsed());
                (last_stats, last_at) = (now, Instant::now());
                continue;
            }
        };
        for output in outputs {
            if output.key_lens.is_empty() {
                continue;
            }
            if out_tx.send(Outgoing { output, read_at }).await.is_err() {
                // The sink stopped: its error is reported below.
                break;
            }
        }
        if out_tx.is_closed() {
            break Ending::Stopped;
        }
    };
    drop(out_tx);
    drop(events);
    join(sink_task).await??;
    if let StatsFormat::Emf(_) = &options.stats_format {
        options.stats_format.report(&metrics.snapshot(), &last_stats, last_at.elapsed());
    }
    Ok(ending)
}

/// The watermark now, also as a metric.
fn current_watermark(watermarks: &mut Watermarks, metrics: &Metrics) -> i64 {
    let watermark = watermarks.current(Instant::now());
    if watermark != NO_WATERMARK {
        metrics.watermark.set(watermark);
    }
    watermark
}

/// Fold a step's event times into the shards' watermarks, write its dead letters, and return
/// its outputs.
fn finish_step(
    done: Vec<Done>,
    watermarks: &mut Watermarks,
    dead_letters: &mut DeadLetterWriter,
    metrics: &Metrics,
) -> Result<Vec<Output>, PipelineError> {
    let mut outputs = Vec::with_capacity(done.len());
    for Done { shard, processed } in done {
        if let Some(time) = processed.output.event_time_ms {
            watermarks.observe(&shard, time);
        }
        if !processed.dead_letters.is_empty() {
            metrics.shard(&shard).dead_letters.inc_by(processed.dead_letters.len() as u64);
            dead_letters.write(&processed.dead_letters)?;
        }
        outputs.push(processed.output);
    }
    Ok(outputs)
}

/// Run operator calls: they may block this thread inside the guest's WASI calls (a guest
/// writing to stderr, as a panicking one does, goes through wasmtime-wasi's synchronous
/// bindings, which block on the runtime), so the runtime is told this thread blocks.
fn guest<T>(calls: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(calls)
}

async fn join<T>(task: tokio::task::JoinHandle<T>) -> Result<T, PipelineError> {
    task.await.map_err(|e| PipelineError::Task(e.to_string()))
}
