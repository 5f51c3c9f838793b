//! What the pipeline's loop works on between its `select!`s: source events turned into steps,
//! ticks, outputs sent to the sink (counted, for checkpoints), and checkpoint cuts. Everything
//! here runs on the pipeline's task; between two calls no instance is in a call.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use weir_contract::{DeadLetter, NO_WATERMARK, Output};

use super::checkpointing::Writer;
use super::instances::{Done, Instances};
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
    /// batches): route the batches, process them in one step, and send the outputs on.
    pub async fn step_from(
        &mut self,
        first: SourceEvent,
        events: &mut mpsc::Receiver<SourceEvent>,
    ) -> Result<(), PipelineError> {
        // Computed at the step's first batch, after what came before it (a shard started or
        // ended, a caught-up read): every batch of a step runs with the same watermark.
        let mut watermark = None;
        let (now, mut read_at, mut routed) = (now_ms(), None::<Instant>, 0);
        let mut next = Some(first);
        while let Some(event) = next.take() {
            match event {
                SourceEvent::Batch { mut batch, read_at: at, position } => {
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
                    read_at = Some(read_at.map_or(at, |r| r.min(at)));
                    self.instances.route(batch);
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
                    // The reader has logged it. Its records were routed before: they are
                    // processed by the end of this step, before any checkpoint. It holds the
                    // watermark until its children start.
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
        let done = guest(|| switch::step(&mut self.instances, &mut self.versions, &self.metrics))?;
        self.metrics.batches.inc_by(routed as u64);
        let outputs = self.finish_step(done).await?;
        self.send(outputs, read_at).await
    }

    /// Processing time passed: every instance is told, with the watermark.
    pub async fn tick(&mut self) -> Result<(), PipelineError> {
        let watermark = self.current_watermark();
        let outputs = guest(|| self.instances.tick(now_ms(), watermark))?;
        self.send(outputs.into_iter().map(|(_, o)| o).collect(), None).await
    }

    /// The input ended: every instance emits what it holds.
    pub async fn finish(&mut self) -> Result<(), PipelineError> {
        let outputs = guest(|| self.instances.finish(now_ms()))?;
        self.send(outputs.into_iter().map(|(_, o)| o).collect(), None).await
    }

    /// Take a checkpoint here, between steps, and hand it to `writer`, which writes it once the
    /// sink has written every output sent before it. Every instance is first told the current
    /// watermark (an instance given no records lately may not have seen it), so the
    /// checkpoint's watermark is one every instance has fired its windows for.
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

    /// Send outputs to the sink (a sink that stopped has its error reported when joined);
    /// results it cannot take go to the dead-letter destination.
    async fn send(&mut self, outputs: Vec<Output>, read_at: Option<Instant>) -> Result<(), PipelineError> {
        for mut output in outputs {
            if output.key_lens.is_empty() {
                continue;
            }
            self.refuse_unwritable(&mut output).await?;
            self.records_out += output.len() as u64;
            if self.out_tx.send(Outgoing { output, read_at, ack: None }).await.is_err() {
                break;
            }
        }
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

    /// Fold a step's event times into the shards' watermarks, write its dead letters, and
    /// return its outputs.
    async fn finish_step(&mut self, done: Vec<Done>) -> Result<Vec<Output>, PipelineError> {
        let mut outputs = Vec::with_capacity(done.len());
        for Done { shard, processed } in done {
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
            outputs.push(processed.output);
        }
        self.watermarks.step_ended(Instant::now());
        Ok(outputs)
    }
}
