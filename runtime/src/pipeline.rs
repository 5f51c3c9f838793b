//! The data path of `weir run`: source task -> operator -> sink task, with processing-time
//! ticks, dead letters, counters and shutdown.
//!
//! The operator runs on this task: a call is a few hundred microseconds of CPU for a batch of
//! 1,024 records, short enough not to starve the runtime. Channels between the three are
//! bounded, so a slow sink slows the operator, which slows the source: memory stays flat.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use weir_operator::Output;

use crate::metrics::Metrics;
use crate::operator::{RunnerError, ShardOperator};
use crate::sink::{DeadLetterWriter, Sink, SinkError};
use crate::source::{Source, SourceError, now_ms};

/// Batches in flight between source and operator, and outputs between operator and sink.
const CHANNEL_BATCHES: usize = 4;

/// How the pipeline runs.
#[derive(Clone, Debug)]
pub struct PipelineOptions {
    /// How often processing time is passed to the operator when no batch arrives.
    pub tick_interval: Duration,
    /// How often the counters are summarised in the log.
    pub stats_interval: Duration,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self { tick_interval: Duration::from_secs(1), stats_interval: Duration::from_secs(10) }
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

/// Run `source` through `operator` into `sink` until the input ends or `shutdown` resolves.
pub async fn run(
    source: Source,
    mut operator: ShardOperator,
    sink: Sink,
    mut dead_letters: DeadLetterWriter,
    metrics: Arc<Metrics>,
    options: PipelineOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<Ending, PipelineError> {
    let (batch_tx, mut batch_rx) = mpsc::channel(CHANNEL_BATCHES);
    let mut source_task = Some(tokio::spawn(source.run(batch_tx)));
    let (out_tx, out_rx) = mpsc::channel::<Output>(CHANNEL_BATCHES);
    let sink_task = tokio::spawn(sink.run(out_rx));

    let mut ticks = tokio::time::interval(options.tick_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut stats = tokio::time::interval(options.stats_interval);
    stats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    stats.tick().await;
    let (mut last_stats, mut last_at) = (metrics.snapshot(), Instant::now());
    tokio::pin!(shutdown);

    let mut restarts_seen = 0;
    let ending = loop {
        let output = tokio::select! {
            biased;
            () = &mut shutdown => break Ending::Stopped,
            batch = batch_rx.recv() => match batch {
                Some(mut batch) => {
                    batch.now_ms = now_ms();
                    let records = batch.len() as u64;
                    let processed = operator.process(&mut batch)?;
                    Metrics::add(&metrics.records_in, records);
                    Metrics::add(&metrics.batches, 1);
                    if !processed.dead_letters.is_empty() {
                        Metrics::add(&metrics.dead_letters, processed.dead_letters.len() as u64);
                        dead_letters.write(&processed.dead_letters)?;
                    }
                    processed.output
                }
                None => {
                    // The source is done: an error ends the run, the end of input finishes it.
                    if let Some(task) = source_task.take() {
                        join(task).await??;
                    }
                    let output = operator.finish(now_ms())?;
                    if !output.is_empty() {
                        Metrics::add(&metrics.records_out, output.len() as u64);
                        let _ = out_tx.send(output).await;
                    }
                    break Ending::EndOfInput;
                }
            },
            _ = ticks.tick() => operator.tick(now_ms())?,
            _ = stats.tick() => {
                let now = metrics.snapshot();
                tracing::info!("{}", now.summary(&last_stats, last_at.elapsed()));
                (last_stats, last_at) = (now, Instant::now());
                continue;
            }
        };
        let restarts = operator.stats().restarts;
        if restarts > restarts_seen {
            Metrics::add(&metrics.operator_restarts, restarts - restarts_seen);
            restarts_seen = restarts;
        }
        if !output.key_lens.is_empty() {
            Metrics::add(&metrics.records_out, output.len() as u64);
            if out_tx.send(output).await.is_err() {
                // The sink stopped: its error is reported below.
                break Ending::Stopped;
            }
        }
    };
    drop(out_tx);
    drop(batch_rx);
    join(sink_task).await??;
    Ok(ending)
}

async fn join<T>(task: tokio::task::JoinHandle<T>) -> Result<T, PipelineError> {
    task.await.map_err(|e| PipelineError::Task(e.to_string()))
}
