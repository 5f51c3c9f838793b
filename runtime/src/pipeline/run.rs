//! One run of the data path ([`Pipeline`]): starts the source, instance and sink tasks,
//! restores a checkpoint, then steps batches, ticks, switches versions and takes checkpoints
//! until the input ends or the shutdown signal comes, and stops in order: what was read is
//! processed and written, and a last checkpoint holds what is still pending.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::checkpointing::{self, Writer};
use super::flow::Flow;
use super::instances::Instances;
use super::progress::Progress;
use super::watermark::Watermarks;
use super::{
    CHANNEL_BATCHES, Checkpoints, Ending, IN_FLIGHT_BATCHES, PipelineError, PipelineOptions, guest, join,
    spread, switch,
};
use crate::checkpoint::Checkpoint;
use crate::deployment::{Change, Versions};
use crate::metrics::{Metrics, StatsFormat};
use crate::sink::{DeadLetterWriter, Outgoing, Sink};
use crate::source::Source;

/// What one run reads, runs and writes, and how. Made with [`Pipeline::new`] and the
/// settings that differ from the defaults (fresh metrics, [`PipelineOptions::default`], no
/// checkpoints), then started with [`Pipeline::run`].
pub struct Pipeline {
    source: Source,
    versions: Versions,
    sink: Sink,
    dead_letters: DeadLetterWriter,
    /// None: metrics of its own, made when it runs.
    metrics: Option<Arc<Metrics>>,
    options: PipelineOptions,
    checkpoints: Option<Checkpoints>,
}

impl Pipeline {
    /// `source` through the operator `versions` into `sink`, records the operator rejects or
    /// fails on into `dead_letters`.
    pub fn new(
        source: Source,
        versions: impl Into<Versions>,
        sink: Sink,
        dead_letters: DeadLetterWriter,
    ) -> Self {
        Self {
            source,
            versions: versions.into(),
            sink,
            dead_letters,
            metrics: None,
            options: PipelineOptions::default(),
            checkpoints: None,
        }
    }

    /// Counts into `metrics` (shared with whoever reports or exports them).
    pub fn metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Runs with `options`.
    pub fn options(mut self, options: PipelineOptions) -> Self {
        self.options = options;
        self
    }

    /// Takes checkpoints (and goes on from `checkpoints.restored`); None: none.
    pub fn checkpoints(mut self, checkpoints: Option<Checkpoints>) -> Self {
        self.checkpoints = checkpoints;
        self
    }

    /// Run the source through `options.parallelism` instances of the operator into the sink
    /// until the input ends or `shutdown` resolves, switching versions as they are delivered,
    /// taking checkpoints if asked to (restoring the state of `checkpoints.restored` first).
    /// Needs tokio's multi-threaded runtime: operator calls run in `block_in_place`.
    ///
    /// On `shutdown` it stops reading, processes the batches already read, writes every
    /// output, and takes a final checkpoint. On an error it still lets the sink write what it
    /// was given before reporting the error.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<Ending, PipelineError> {
        self.run_term(shutdown).await.0
    }

    /// [`Pipeline::run`], handing the operator versions back however it ended: a lease
    /// group's worker runs the pipeline in terms, one per set of shards, with one operator
    /// (and its watch) throughout.
    pub async fn run_term(
        self,
        shutdown: impl Future<Output = ()>,
    ) -> (Result<Ending, PipelineError>, Versions) {
        let Self { source, versions, sink, dead_letters, metrics, options, checkpoints } = self;
        let metrics = metrics.unwrap_or_default();
        let (restored, first_id, writer, interval, source_name) = match checkpoints {
            Some(c) => {
                let first_id = c.store.next_id();
                (
                    c.restored,
                    first_id,
                    Some(Writer::start(c.store, metrics.clone())),
                    Some(c.interval),
                    c.source,
                )
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
        let mut instances = match instances {
            Ok(instances) => instances,
            Err(e) => return (Err(e), versions),
        };
        if let Some(candidate) = versions.candidate() {
            guest(|| instances.shadow(candidate));
        }
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
        let single_shard = source.single_shard();
        let (event_tx, mut events) = mpsc::channel(CHANNEL_BATCHES);
        let mut source_task = Some(tokio::spawn(source.run(event_tx, instances.router().clone())));
        let (out_tx, out_rx) = mpsc::channel::<Outgoing>(CHANNEL_BATCHES);
        let refusal = sink.refusal();
        // Keys spread over shards are looked for only where there are shards to spread over.
        let spread = match flow_grouping(&versions) {
            weir_contract::Grouping::JsonField(_) if single_shard => None,
            weir_contract::Grouping::JsonField(field) => Some(spread::Spread::new(
                crate::routing::field::Field::new(field.as_bytes()),
                options.partition_keyed,
            )),
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

        let in_flight_limit = IN_FLIGHT_BATCHES * flow.instances.parallelism();
        let mut ticks = tokio::time::interval(options.tick_interval);
        let mut stats = tokio::time::interval(options.stats_interval);
        let mut checkpoint_ticks = tokio::time::interval(interval.unwrap_or(Duration::from_secs(3600)));
        for timer in [&mut ticks, &mut stats, &mut checkpoint_ticks] {
            timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        }
        stats.tick().await;
        checkpoint_ticks.tick().await;
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
                    change = flow.versions.next_change() => match change {
                        Change::Version(next) => {
                            guest(|| switch::switch(&mut flow.instances, &mut flow.versions, next, &metrics));
                        }
                        Change::Candidate(Some(candidate)) => guest(|| flow.instances.shadow(&candidate)),
                        Change::Candidate(None) => flow.instances.unshadow(),
                    },
                    _ = ticks.tick() => flow.tick().await?,
                    _ = stats.tick() => {
                        let (now, before, elapsed) = metrics.since_reported();
                        options.stats_format.report(&now, &before, elapsed);
                    }
                    stepped = flow.instances.finished() => flow.collect(stepped?).await?,
                    // Batches are taken while the instances have room: a slow operator slows the
                    // source, and memory stays flat.
                    event = events.recv(), if flow.instances.in_flight() < in_flight_limit => match event {
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
                            flow.settle().await?;
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
                flow.settle().await?;
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
            let (now, before, elapsed) = metrics.since_reported();
            options.stats_format.report(&now, &before, elapsed);
        }
        let ended = result.and_then(|ending| {
            sunk?;
            lettered?;
            checkpointed?;
            Ok(ending)
        });
        (ended, versions)
    }
}

/// The grouping key of the operator that runs first (a swap to another one is refused).
fn flow_grouping(versions: &Versions) -> weir_contract::Grouping {
    versions.initial().grouping().clone()
}
