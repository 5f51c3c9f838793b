//! A Kinesis stream as a source: a thin adapter over weir-kinesis's [`StreamReader`] (every
//! shard read concurrently, in lineage order, with retries and iterator renewal) that packs
//! each reply (a GetRecords reply, or a subscription's event) into batches for the operators and keeps the per-shard metrics.

use std::collections::HashMap;
use std::sync::Arc;

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::mpsc;
use weir_kinesis::{Kinesis, ReadOptions, ReaderStats, ShardEvent, StartPosition, Stream, StreamReader};

use super::{Batcher, Lineage, SourceError, SourceEvent};
use crate::metrics::{Metrics, ShardMetrics};
use crate::routing::Router;

/// GetRecords replies in flight between the stream reader and the adapter.
const REPLIES_IN_FLIGHT: usize = 16;

/// A Kinesis stream, checked to exist.
pub struct KinesisSource {
    reader: StreamReader,
    batch_size: usize,
    metrics: Arc<Metrics>,
    /// Read through subscriptions (enhanced fan-out).
    fan_out: bool,
}

/// `weir_subscriptions_active`: the shards this source reads through subscriptions, taken off
/// again when the source stops, however it stops.
struct Subscriptions {
    gauge: Option<Gauge>,
    open: i64,
}

impl Subscriptions {
    fn start(&mut self) {
        if let Some(gauge) = &self.gauge {
            gauge.inc();
            self.open += 1;
        }
    }

    fn stop(&mut self) {
        if let Some(gauge) = &self.gauge {
            gauge.dec();
            self.open -= 1;
        }
    }
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        if let Some(gauge) = &self.gauge {
            gauge.dec_by(self.open);
        }
    }
}

impl KinesisSource {
    /// The source for `stream`; lists its shards, so a missing stream, missing credentials or
    /// an unreachable endpoint is refused here, before anything runs.
    pub async fn connect(
        kinesis: Kinesis,
        stream: Stream,
        options: ReadOptions,
        batch_size: usize,
        metrics: Arc<Metrics>,
    ) -> Result<Self, SourceError> {
        let fan_out = options.fan_out.is_some();
        let reader = StreamReader::connect(kinesis, stream, options).await?;
        Ok(Self { reader, batch_size: batch_size.max(1), metrics, fan_out })
    }

    pub(super) async fn run(self, tx: mpsc::Sender<SourceEvent>, router: &Router) -> Result<(), SourceError> {
        let (shard_tx, mut shard_events) = mpsc::channel(REPLIES_IN_FLIGHT);
        let reader = tokio::spawn(self.reader.run(shard_tx));
        // Each shard's series, and its reader's counts at the last look.
        let mut shards: HashMap<String, (ShardMetrics, ReaderStats)> = HashMap::new();
        let mut active =
            Subscriptions { gauge: self.fan_out.then(|| self.metrics.fan_out.active.clone()), open: 0 };
        let mut batch = Batcher::new(router, "");
        while let Some(event) = shard_events.recv().await {
            let event = match event {
                ShardEvent::Started { shard, parents, hash_range, from } => {
                    shards.insert(shard.clone(), (self.metrics.shard(&shard), ReaderStats::default()));
                    active.start();
                    let from_ms = match from {
                        StartPosition::TrimHorizon => Some(0),
                        StartPosition::AtTimestamp(at) => Some(at.as_millisecond()),
                        // A resumed shard has its position already; latest means now.
                        StartPosition::Latest | StartPosition::AfterSequenceNumber(_) => None,
                    };
                    SourceEvent::Started { shard, lineage: Some(Lineage { parents, hash_range, from_ms }) }
                }
                ShardEvent::Ended { shard } => {
                    active.stop();
                    SourceEvent::Ended { shard }
                }
                ShardEvent::Idle { shard } => {
                    active.stop();
                    SourceEvent::Idle { shard }
                }
                ShardEvent::Records {
                    shard,
                    records,
                    sent_at,
                    read_at,
                    millis_behind_latest,
                    caught_up,
                    stats,
                } => {
                    if let Some((metrics, seen)) = shards.get_mut(&shard) {
                        metrics.read_throttles.inc_by(stats.throttles - seen.throttles);
                        metrics.read_retries.inc_by(stats.retries - seen.retries);
                        metrics.iterator_renewals.inc_by(stats.renewals - seen.renewals);
                        self.metrics.fan_out.count(seen, &stats);
                        self.metrics
                            .checkpoints
                            .expired_positions
                            .inc_by(stats.expired_positions - seen.expired_positions);
                        *seen = stats;
                        if let Some(behind) = millis_behind_latest {
                            metrics.millis_behind_latest.set(behind);
                        }
                    }
                    if records.is_empty() {
                        if caught_up && tx.send(SourceEvent::CaughtUp { shard, sent_at }).await.is_err() {
                            return Ok(());
                        }
                        continue;
                    }
                    // Batches of at most `batch_size` records per instance, each closed once
                    // one instance's share is full, the last at the reply's end.
                    batch.start(&shard);
                    let first = records.len().min(self.batch_size * batch.parallelism());
                    let bytes = records[..first]
                        .iter()
                        .map(|r| r.data.as_ref().len() + r.partition_key.as_deref().map_or(0, str::len))
                        .sum();
                    batch.reserve(first, bytes);
                    for (i, record) in records.iter().enumerate() {
                        let arrival = record
                            .approximate_arrival_timestamp
                            .and_then(|t| t.to_millis().ok())
                            .unwrap_or(0);
                        let fill = batch.push(
                            record.partition_key.as_deref().unwrap_or_default(),
                            record.data.as_ref(),
                            arrival,
                            Some(record.sequence_number.as_bytes()),
                        );
                        if fill >= self.batch_size || i + 1 == records.len() {
                            let position = Some(record.sequence_number.clone());
                            let batch = batch.take();
                            if tx.send(SourceEvent::Batch { batch, read_at, position }).await.is_err() {
                                return Ok(());
                            }
                        }
                    }
                    continue;
                }
            };
            if tx.send(event).await.is_err() {
                return Ok(());
            }
        }
        Ok(reader.await.map_err(weir_kinesis::KinesisError::from)??)
    }
}
