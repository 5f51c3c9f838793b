//! The data path of `weir run`: source task -> one operator instance per shard -> sink task,
//! with processing-time ticks to every shard (idle ones too), state hand-off when shards split
//! or merge ([`shards`]), version switches and rollbacks ([`switch`]), dead letters, metrics and
//! shutdown.
//!
//! The operators run on this task: a call is a few hundred microseconds of CPU for a batch of
//! 1,024 records, short enough not to starve the runtime. Channels between the three are
//! bounded, so a slow sink slows the operators, which slows the source: memory stays flat.

pub mod shards;
pub mod switch;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use weir_contract::Output;

use crate::deployment::Versions;
use crate::metrics::{Metrics, ShardMetrics, StatsFormat};
use crate::operator::{DEFAULT_SNAPSHOT_EVERY, RunnerError};
use crate::sink::{DeadLetterWriter, Outgoing, Sink, SinkError};
use crate::source::{Source, SourceError, SourceEvent, now_ms};
use shards::Shards;

/// Batches in flight between source and operators, and outputs between operators and sink:
/// enough that shard readers keep reading while the operators work (4 measured 0.75x of a bare
/// GetRecords loop draining 8 shards, 16 measured 0.86x), few enough to hold memory flat.
const CHANNEL_BATCHES: usize = 16;

/// How the pipeline runs.
#[derive(Clone, Debug)]
pub struct PipelineOptions {
    /// How often processing time is passed to the operator when no batch arrives.
    pub tick_interval: Duration,
    /// How often the counters are summarised in the log.
    pub stats_interval: Duration,
    /// Operator calls between snapshots of each shard's instance.
    pub snapshot_every: usize,
    /// How the counters are reported every `stats_interval`.
    pub stats_format: StatsFormat,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            tick_interval: Duration::from_secs(1),
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
    /// The source sent records of a shard it had not started (a bug in the source).
    #[error("internal error: records of shard {0} arrived before the shard started")]
    UnknownShard(String),
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

/// Run `source` through an instance of the operator per shard into `sink` until the input ends
/// or `shutdown` resolves, switching versions as `operators` delivers them. Needs tokio's
/// multi-threaded runtime: operator calls run in `block_in_place`.
pub async fn run(
    source: Source,
    versions: impl Into<Versions>,
    sink: Sink,
    mut dead_letters: DeadLetterWriter,
    metrics: Arc<Metrics>,
    options: PipelineOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<Ending, PipelineError> {
    let (event_tx, mut events) = mpsc::channel(CHANNEL_BATCHES);
    let mut source_task = Some(tokio::spawn(source.run(event_tx)));
    let (out_tx, out_rx) = mpsc::channel::<Outgoing>(CHANNEL_BATCHES);
    let sink_task = tokio::spawn(sink.run(out_rx));
    let mut versions = versions.into();
    let mut shards = Shards::new(versions.initial(), options.snapshot_every);

    let mut ticks = tokio::time::interval(options.tick_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut stats = tokio::time::interval(options.stats_interval);
    stats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    stats.tick().await;
    let (mut last_stats, mut last_at) = (metrics.snapshot(), Instant::now());
    tokio::pin!(shutdown);

    let ending = loop {
        // Outputs of this step, each with its shard's series and when its input was read.
        let outputs: Vec<(Output, ShardMetrics, Option<Instant>)> = tokio::select! {
            biased;
            () = &mut shutdown => break Ending::Stopped,
            event = events.recv() => match event {
                Some(SourceEvent::Batch { mut batch, read_at }) => {
                    batch.now_ms = now_ms();
                    let records = batch.len() as u64;
                    let (processed, shard) =
                        guest(|| switch::process(&mut shards, &mut versions, &mut batch, &metrics))?;
                    shard.records_in.inc_by(records);
                    metrics.batches.inc();
                    if !processed.dead_letters.is_empty() {
                        shard.dead_letters.inc_by(processed.dead_letters.len() as u64);
                        dead_letters.write(&processed.dead_letters)?;
                    }
                    vec![(processed.output, shard, Some(read_at))]
                }
                Some(SourceEvent::Started { shard, lineage }) => {
                    let keys = guest(|| shards.start(&shard, lineage.as_ref(), &metrics))?;
                    if let Some(lineage) = lineage.filter(|l| !l.parents.is_empty()) {
                        tracing::info!("shard {shard} starts with {keys} keys of state from {}", lineage.parents.join(", "));
                    }
                    metrics.shards_reading.set(shards.len() as i64);
                    continue;
                }
                Some(SourceEvent::Rejected(letter)) => {
                    metrics.shard(&letter.shard_id).dead_letters.inc();
                    dead_letters.write(std::slice::from_ref(&letter))?;
                    continue;
                }
                Some(SourceEvent::Ended { shard }) => {
                    let keys = guest(|| shards.end(&shard))?;
                    tracing::info!("shard {shard} ended; {keys} keys of state wait for its children");
                    metrics.reshards.inc();
                    metrics.shards_reading.set(shards.len() as i64);
                    continue;
                }
                None => {
                    // The source is done: an error ends the run, the end of input finishes it.
                    if let Some(task) = source_task.take() {
                        join(task).await??;
                    }
                    for (output, shard) in guest(|| shards.finish(now_ms()))? {
                        shard.records_out.inc_by(output.len() as u64);
                        let _ = out_tx.send(output.into()).await;
                    }
                    break Ending::EndOfInput;
                }
            },
            next = versions.next_version() => {
                guest(|| switch::switch(&mut shards, &mut versions, next, &metrics));
                continue;
            }
            _ = ticks.tick() => guest(|| shards.tick(now_ms()))?.into_iter().map(|(o, m)| (o, m, None)).collect(),
            _ = stats.tick() => {
                let now = metrics.snapshot();
                options.stats_format.report(&now, &last_stats, last_at.elapsed());
                (last_stats, last_at) = (now, Instant::now());
                continue;
            }
        };
        for (output, shard, read_at) in outputs {
            if output.key_lens.is_empty() {
                continue;
            }
            shard.records_out.inc_by(output.len() as u64);
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

/// Run operator calls: they may block this thread inside the guest's WASI calls (a guest
/// writing to stderr, as a panicking one does, goes through wasmtime-wasi's synchronous
/// bindings, which block on the runtime), so the runtime is told this thread blocks.
fn guest<T>(calls: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(calls)
}

async fn join<T>(task: tokio::task::JoinHandle<T>) -> Result<T, PipelineError> {
    task.await.map_err(|e| PipelineError::Task(e.to_string()))
}
