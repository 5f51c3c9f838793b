//! What the pipeline's loop works on between its `select!`s: source events handed to the
//! instances, their results collected (event times into the watermarks, dead letters written,
//! outputs sent to the sink and counted, for checkpoints), ticks, and checkpoint cuts. Everything
//! here runs on the pipeline's task; the instances work on their own threads meanwhile.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use weir_contract::{DeadLetter, NO_WATERMARK, Output};

use super::checkpointing::Writer;
use super::instances::{Done, Instances, Stepped};
use super::progress::Progress;
use super::spread::Spread;
use super::watermark::Watermarks;
use super::{PipelineError, STEP_BATCHES, guest, switch};
use crate::checkpoint::{Checkpoint, Meta, operator_ref};
use crate::clock::now_ms;
use crate::deployment::Versions;
use crate::metrics::Metrics;
use crate::sink::{DeadLetterWriter, Outgoing};
use crate::source::SourceEvent;

/// The pipeline's working state.
pub struct Flow {
    pub instances: Instances,
    pub versions: Versions,
    pub watermarks: Watermarks,
    pub progress: Progress,
    pub dead_letters: DeadLetterWriter,
    pub metrics: Arc<Metrics>,
    pub out_tx: mpsc::Sender<Outgoing>,
    /// What is read (`kinesis://STREAM`), as checkpoints name it.
    pub source_name: String,
    /// The next checkpoint's number.
    pub next_checkpoint: u64,
    /// Output records sent to the sink, over every run (from the restored checkpoint on).
    pub records_out: u64,
    /// Why the sink cannot take a result, if it cannot (such results become dead letters).
    pub refusal: fn(&str, &[u8]) -> Option<String>,
    /// Grouping keys found on several shards (when records are grouped by a JSON field).
    pub spread: Option<Spread>,
    /// Shards read to their end in this run.
    pub shards_ended: usize,
}

impl Flow {
    /// Work through `first` and the events already waiting behind it (up to a step's worth of
    /// batches): hand the batches to the instances, and collect the results ready. While a new
    /// version is on probation, wait for every result and decide on the failures.
    pub async fn step_from(
        &mut self,
        first: SourceEvent,
        events: &mut mpsc::Receiver<SourceEvent>,
    ) -> Result<(), PipelineError> {
        // Computed at the step's first batch, after what came before it (a shard started or
        // ended, a caught-up read): every batch of a step runs with the same watermark.
        let mut watermark = None;
        let (now, probation, mut routed) = (now_ms(), self.versions.on_probation(), 0);
        let mut next = Some(first);
        while let Some(event) = next.take() {
            match event {
                SourceEvent::Batch { mut batch, read_at, position } => {
                    let watermark = *watermark.get_or_insert_with(|| self.current_watermark());
                    for part in batch.parts_mut() {
                        part.now_ms = now;
                        part.watermark_ms = watermark;
                    }
                    self.metrics.shard(batch.shard_id()).records_in.inc_by(batch.len() as u64);
                    self.progress.advanced(batch.shard_id(), position.as_deref());
                    if let Some(spread) = &mut self.spread {
                        for part in batch.parts() {
                            self.metrics.keys_on_several_shards.inc_by(spread.observe(part, &self.progress)?);
                        }
                    }
                    self.instances.route(batch, probation, Some(read_at));
                    routed += 1;
                }
                SourceEvent::Started { shard, lineage } => {
                    let parents = lineage.as_ref().map_or(&[][..], |l| &l.parents[..]);
                    self.watermarks.started(&shard, parents, lineage.as_ref().map(|l| l.hash_range));
                    if !parents.is_empty() {
                        tracing::info!("shard {shard} starts after {}", parents.join(", "));
                    }
                    let from_ms = lineage.as_ref().and_then(|l| l.from_ms).unwrap_or(now);
                    self.progress.started(&shard, parents, from_ms);
                    self.metrics.shards_reading.inc();
                }
                SourceEvent::CaughtUp { shard, sent_at } => self.watermarks.caught_up(&shard, sent_at),
                SourceEvent::Idle { shard } => self.watermarks.not_read_again(&shard),
                SourceEvent::Rejected(letter) => {
                    self.metrics.shard(&letter.shard_id).dead_letters.inc();
                    self.dead_letters.write(std::slice::from_ref(&letter)).await?;
                }
                SourceEvent::Ended { shard } => {
                    // The reader has logged it. Its records were handed over before: they are
                    // processed before any checkpoint (its snapshot waits for them). It holds
                    // the watermark until its children start.
                    self.watermarks.ended(&shard);
                    self.progress.ended(&shard);
                    self.shards_ended += 1;
                    self.metrics.reshards.inc();
                    self.metrics.shards_reading.dec();
                }
            }
            if routed < STEP_BATCHES {
                next = events.try_recv().ok();
            }
        }
        if routed == 0 {
            return Ok(());
        }
        // Before the batches count: whoever sees them counted sees them in flight.
        self.metrics.in_flight.set(self.instances.in_flight() as i64);
        self.metrics.batches.inc_by(routed as u64);
        let stepped = if probation { self.instances.settle().await? } else { self.instances.ready()? };
        self.collect(stepped).await
    }

    /// Take results the instances sent back: failures on probation decided on (the instances
    /// holding them then go on), event times folded into the shards' watermarks, dead letters
    /// written, outputs sent on.
    pub async fn collect(&mut self, (done, failed): Stepped) -> Result<(), PipelineError> {
        self.take(done).await?;
        if !failed.is_empty() {
            guest(|| switch::decide(&mut self.instances, &mut self.versions, failed, &self.metrics));
            let (done, _) = self.instances.ready()?;
            self.take(done).await?;
        }
        // After the results were taken (and the watermark knows what they processed).
        self.metrics.in_flight.set(self.instances.in_flight() as i64);
        Ok(())
    }

    /// Wait for every result of what was handed over, and take them.
    pub async fn settle(&mut self) -> Result<(), PipelineError> {
        while self.instances.in_flight() > 0 {
            let stepped = self.instances.settle().await?;
            self.collect(stepped).await?;
        }
        Ok(())
    }

    /// Processing time passed: every instance is told, with the watermark.
    pub async fn tick(&mut self) -> Result<(), PipelineError> {
        let watermark = self.current_watermark();
        let outputs = guest(|| self.instances.tick(now_ms(), watermark))?;
        self.after_all(outputs).await
    }

    /// The input ended: every instance emits what it holds.
    pub async fn finish(&mut self) -> Result<(), PipelineError> {
        let outputs = guest(|| self.instances.finish(now_ms()))?;
        self.after_all(outputs).await
    }

    /// Take a checkpoint here and hand it to `writer`, which writes it once the sink has
    /// written every output sent before it. Every instance is first told the current watermark
    /// (an instance given no records lately may not have seen it), so the checkpoint's
    /// watermark is one every instance has fired its windows for; the tick waits for every
    /// sub-batch handed over and sends their results on, so the snapshot after it holds the
    /// state after exactly the records the checkpoint's positions name.
    pub async fn cut(&mut self, writer: &Writer) -> Result<(), PipelineError> {
        self.tick().await?;
        let state = guest(|| self.instances.snapshot())?;
        let meta = Meta {
            id: self.next_checkpoint,
            taken_at: jiff::Timestamp::now(),
            source: self.source_name.clone(),
            operator: operator_ref(self.instances.loaded()),
            parallelism: self.instances.parallelism() as u32,
            shards: self.progress.cut(&self.watermarks),
            watermark_ms: self.watermarks.last(),
            records_out: self.records_out,
        };
        self.next_checkpoint += 1;
        let (ack, written) = Outgoing::ack();
        if self.out_tx.send(ack).await.is_err() {
            // The sink stopped: its error ends the run; no checkpoint claims what it lost.
            return Ok(());
        }
        let mut stored = vec![written];
        stored.extend(self.dead_letters.ack().await);
        writer.submit(Checkpoint { meta, state }, stored).await;
        Ok(())
    }

    /// Send what every instance produced after all it was handed: first the results of those
    /// sub-batches (waiting by now), then `outputs`.
    async fn after_all(&mut self, outputs: Vec<(usize, Output)>) -> Result<(), PipelineError> {
        let stepped = self.instances.ready()?;
        self.collect(stepped).await?;
        for (_, output) in outputs {
            self.send(output, None).await?;
        }
        Ok(())
    }

    /// Send an output to the sink (a sink that stopped has its error reported when joined);
    /// results it cannot take go to the dead-letter destination.
    async fn send(&mut self, mut output: Output, read_at: Option<Instant>) -> Result<(), PipelineError> {
        if output.key_lens.is_empty() {
            return Ok(());
        }
        self.refuse_unwritable(&mut output).await?;
        self.records_out += output.len() as u64;
        // A sink that stopped ends the run (the loop sees its channel closed).
        let _ = self.out_tx.send(Outgoing { output, read_at, ack: None }).await;
        Ok(())
    }

    /// Take the results the sink cannot write out of `output`, as dead letters.
    async fn refuse_unwritable(&mut self, output: &mut Output) -> Result<(), PipelineError> {
        let refusal = self.refusal;
        if output.iter().all(|(key, data)| refusal(key, data).is_none()) {
            return Ok(());
        }
        let mut kept = Output { event_time_ms: output.event_time_ms, ..Output::default() };
        let mut letters = Vec::new();
        for (key, data) in output.iter() {
            match refusal(key, data) {
                None => kept.emit(key, data),
                Some(why) => letters.push(DeadLetter {
                    sequence_number: None,
                    partition_key: key.to_string(),
                    data: data.to_vec(),
                    arrival_time_ms: now_ms(),
                    shard_id: String::new(),
                    reason: format!("a result the sink cannot write: {why}"),
                }),
            }
        }
        self.metrics.results_refused.inc_by(letters.len() as u64);
        self.dead_letters.write(&letters).await?;
        *output = kept;
        Ok(())
    }

    /// The watermark now, also as a metric.
    fn current_watermark(&mut self) -> i64 {
        let watermark = self.watermarks.current();
        if watermark != NO_WATERMARK {
            self.metrics.watermark.set(watermark);
        }
        watermark
    }

    /// Fold processed sub-batches' event times into the shards' watermarks, write their dead
    /// letters, and send their outputs on.
    async fn take(&mut self, done: Vec<Done>) -> Result<(), PipelineError> {
        if done.is_empty() {
            return Ok(());
        }
        for Done { shard, processed, read_at } in done {
            if let Some(time) = processed.output.event_time_ms {
                self.watermarks.observe(&shard, time);
            }
            if !processed.dead_letters.is_empty() {
                self.metrics.shard(&shard).dead_letters.inc_by(processed.dead_letters.len() as u64);
                for lateness in processed.dead_letters.iter().filter_map(DeadLetter::lateness) {
                    self.metrics.late_records(lateness).inc();
                }
                self.dead_letters.write(&processed.dead_letters).await?;
            }
            self.send(processed.output, read_at).await?;
        }
        self.watermarks.collected(Instant::now());
        Ok(())
    }
}
