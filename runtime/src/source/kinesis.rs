//! A Kinesis stream as a source: every shard read concurrently, one reader task per shard,
//! coordinated by the shard lineage.
//!
//! The coordinator lists the shards at start, every `discovery_interval`, and whenever a shard
//! ends. A shard is started (a [`SourceEvent::Started`], then its reader) once each of its
//! parents has ended, or was never going to be read: a child of a split or merge is read only
//! after its parents are read to the end, and the pipeline hands it their state for its hash
//! range. A reader sends its shard's `Ended` before it tells the coordinator, and the
//! coordinator sends the child's `Started` after that, so on the one channel the pipeline
//! always sees a parent end before its child starts.
//!
//! `--start-position latest` starts the shards open now at their newest record and skips
//! closed ones, as the Kinesis Client Library does; `trim-horizon` and `at-timestamp:` start
//! from the oldest shards and follow the lineage. Children always start at their beginning.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use weir_kinesis::reader::{self, ReaderStats};
use weir_kinesis::{KinesisError, ShardInfo, ShardReader, StartPosition, Stream};
use weir_operator::OwnedBatch;

use super::{SourceError, SourceEvent};
use crate::metrics::{Metrics, ShardMetrics};

/// How a Kinesis source reads.
#[derive(Clone, Debug)]
pub struct KinesisSourceOptions {
    /// Where shards open at start are read from.
    pub start: StartPosition,
    /// The wait after an empty read, at first (it doubles while the shard stays empty).
    pub poll_interval: Duration,
    /// How often the shard list is read again, to find new shards.
    pub discovery_interval: Duration,
    /// Stop reading a shard once it has been caught up this long, and end the input when every
    /// shard has stopped (None: read forever).
    pub until_idle: Option<Duration>,
    /// Records per batch, at most.
    pub batch_size: usize,
}

/// A Kinesis stream, checked to exist.
pub struct KinesisSource {
    client: Client,
    stream: Stream,
    endpoint: String,
    options: KinesisSourceOptions,
    metrics: Arc<Metrics>,
    shards: Vec<ShardInfo>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    /// Waiting for its parents to end.
    Waiting,
    Reading,
    /// Read to its end.
    Ended,
    /// Caught up for the idle time (with `until_idle`).
    Idle,
    /// Not read: closed before a `latest` start.
    Skipped,
}

/// What a reader tells the coordinator when it stops.
enum Notice {
    Ended(String),
    Idle(String),
    Failed(KinesisError),
}

impl KinesisSource {
    /// The source for `stream`; lists its shards, so a missing stream, missing credentials or
    /// an unreachable endpoint is refused here, before anything runs.
    pub async fn connect(
        client: Client,
        stream: Stream,
        endpoint: String,
        options: KinesisSourceOptions,
        metrics: Arc<Metrics>,
    ) -> Result<Self, SourceError> {
        let shards = reader::list_shards(&client, &stream, &endpoint).await?;
        Ok(Self { client, stream, endpoint, options, metrics, shards })
    }

    pub(super) async fn run(self, tx: mpsc::Sender<SourceEvent>) -> Result<(), SourceError> {
        let mut tracked: BTreeMap<String, (ShardInfo, Status)> = BTreeMap::new();
        let latest = self.options.start == StartPosition::Latest;
        for shard in &self.shards {
            let status = if latest && shard.closed { Status::Skipped } else { Status::Waiting };
            tracked.insert(shard.id.clone(), (shard.clone(), status));
        }
        let (notice_tx, mut notices) = mpsc::unbounded_channel();
        let mut readers = JoinSet::new();
        let mut discovery = tokio::time::interval(self.options.discovery_interval);
        discovery.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        discovery.tick().await;
        let mut first = true;
        loop {
            // Start every shard whose parents are done.
            let ready: Vec<ShardInfo> = tracked
                .values()
                .filter(|(info, status)| {
                    *status == Status::Waiting
                        && info.parents.iter().all(|p| {
                            tracked.get(p).is_none_or(|(_, s)| matches!(s, Status::Ended | Status::Skipped))
                        })
                })
                .map(|(info, _)| info.clone())
                .collect();
            for info in ready {
                let start = match &self.options.start {
                    StartPosition::Latest if first => StartPosition::Latest,
                    StartPosition::AtTimestamp(t) => StartPosition::AtTimestamp(*t),
                    _ => StartPosition::TrimHorizon,
                };
                let started = SourceEvent::Started {
                    shard: info.id.clone(),
                    parents: info.parents.clone(),
                    hash_range: info.hash_range,
                };
                if tx.send(started).await.is_err() {
                    return Ok(());
                }
                tracing::info!(
                    stream = %self.stream,
                    "reading shard {}{}",
                    info.id,
                    if info.parents.is_empty() { String::new() } else { format!(" (after {})", info.parents.join(", ")) }
                );
                let reader = ShardReader::new(
                    self.client.clone(),
                    self.stream.clone(),
                    self.endpoint.clone(),
                    info.id.clone(),
                    start,
                    self.options.poll_interval,
                );
                let task = ReaderTask {
                    reader,
                    tx: tx.clone(),
                    notices: notice_tx.clone(),
                    metrics: self.metrics.shard(&info.id),
                    batch_size: self.options.batch_size,
                    until_idle: self.options.until_idle,
                };
                readers.spawn(task.run());
                if let Some(entry) = tracked.get_mut(&info.id) {
                    entry.1 = Status::Reading;
                }
            }
            first = false;
            let reading = tracked.values().filter(|(_, s)| *s == Status::Reading).count();
            if self.options.until_idle.is_some() && reading == 0 {
                // Every shard went idle or ended, and no child is ready: the input ends.
                return Ok(());
            }
            let rediscover = tokio::select! {
                notice = notices.recv() => match notice {
                    Some(Notice::Ended(shard)) => {
                        tracing::info!(stream = %self.stream, "shard {shard} read to its end");
                        set(&mut tracked, &shard, Status::Ended);
                        true
                    }
                    Some(Notice::Idle(shard)) => {
                        set(&mut tracked, &shard, Status::Idle);
                        // A last look for children, so none is left out of the run.
                        tracked.values().all(|(_, s)| *s != Status::Reading)
                    }
                    Some(Notice::Failed(error)) => return Err(error.into()),
                    None => return Ok(()),
                },
                _ = discovery.tick() => true,
                () = tx.closed() => return Ok(()),
            };
            if rediscover {
                match reader::list_shards(&self.client, &self.stream, &self.endpoint).await {
                    Ok(shards) => {
                        for shard in shards {
                            tracked.entry(shard.id.clone()).or_insert_with(|| (shard, Status::Waiting));
                        }
                    }
                    Err(e) => {
                        tracing::warn!("cannot list the shards of {}, will try again: {e}", self.stream)
                    }
                }
            }
        }
    }
}

fn set(tracked: &mut BTreeMap<String, (ShardInfo, Status)>, shard: &str, status: Status) {
    if let Some(entry) = tracked.get_mut(shard) {
        entry.1 = status;
    }
}

/// One shard's reading loop.
struct ReaderTask {
    reader: ShardReader,
    tx: mpsc::Sender<SourceEvent>,
    notices: mpsc::UnboundedSender<Notice>,
    metrics: ShardMetrics,
    batch_size: usize,
    until_idle: Option<Duration>,
}

impl ReaderTask {
    async fn run(mut self) {
        let shard = self.reader.shard().to_string();
        let mut seen = ReaderStats::default();
        let mut caught_up_since: Option<Instant> = None;
        loop {
            let reply = match self.reader.next().await {
                Ok(reply) => reply,
                Err(e) => {
                    let _ = self.notices.send(Notice::Failed(e));
                    return;
                }
            };
            let read_at = Instant::now();
            let stats = self.reader.stats();
            self.metrics.read_throttles.inc_by(stats.throttles - seen.throttles);
            self.metrics.read_retries.inc_by(stats.retries - seen.retries);
            self.metrics.iterator_renewals.inc_by(stats.renewals - seen.renewals);
            seen = stats;
            if let Some(behind) = reply.millis_behind_latest {
                self.metrics.millis_behind_latest.set(behind);
            }
            let caught_up = reply.caught_up();
            for chunk in reply.records.chunks(self.batch_size) {
                let mut batch = OwnedBatch::new(shard.clone());
                batch.reserve(
                    chunk.len(),
                    chunk
                        .iter()
                        .map(|r| r.data.as_ref().len() + r.partition_key.as_deref().map_or(0, str::len))
                        .sum(),
                );
                for record in chunk {
                    let arrival =
                        record.approximate_arrival_timestamp.and_then(|t| t.to_millis().ok()).unwrap_or(0);
                    batch.push(
                        record.partition_key.as_deref().unwrap_or_default(),
                        record.data.as_ref(),
                        arrival,
                    );
                }
                if self.tx.send(SourceEvent::Batch { batch, read_at }).await.is_err() {
                    return;
                }
            }
            if reply.ended {
                if self.tx.send(SourceEvent::Ended { shard: shard.clone() }).await.is_ok() {
                    let _ = self.notices.send(Notice::Ended(shard));
                }
                return;
            }
            if let Some(idle) = self.until_idle {
                let since = if caught_up { *caught_up_since.get_or_insert(read_at) } else { read_at };
                caught_up_since = caught_up.then_some(since);
                if caught_up && since.elapsed() >= idle {
                    tracing::info!("shard {shard} caught up for {idle:?}: done reading it");
                    let _ = self.notices.send(Notice::Idle(shard));
                    return;
                }
            }
        }
    }
}
