//! A whole stream read in shard-lineage order: every shard read concurrently, one
//! [`ShardReader`] task per shard, a child shard started only once its parents are read to the
//! end.
//!
//! [`StreamReader::run`] lists the shards at start, every `discovery_interval`, and whenever a
//! shard ends. A shard is started (a [`ShardEvent::Started`], then its reader) once each of its
//! parents has ended, or was never going to be read. A reader sends its shard's `Ended` before
//! it tells the coordinator, and the coordinator sends the child's `Started` after that, so on
//! the one channel a parent's end always comes before its child's start.
//!
//! [`StartPosition::Latest`] starts the shards open now at their newest record and skips closed
//! ones, as the Kinesis Client Library does; `trim-horizon` and `at-timestamp:` start from the
//! oldest shards and follow the lineage. Children always start at their beginning.
//!
//! A run resumed from a checkpoint ([`ReadOptions::resume`]) reads each shard the checkpoint
//! knows from where it stood (closed or not), takes the finished ones as ended (their children
//! may start), and applies the start position only to shards it does not know.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::types::Record;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::KinesisError;
use crate::aws::{Kinesis, Stream};
use crate::reader::{self, HashRange, ReaderStats, ShardInfo, ShardReader, StartPosition};

/// How a stream is read.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    /// Where shards open at start are read from.
    pub start: StartPosition,
    /// The wait after an empty read, at first (it doubles while the shard stays empty).
    pub poll_interval: Duration,
    /// How often the shard list is read again, to find new shards.
    pub discovery_interval: Duration,
    /// Stop reading a shard once it has been caught up this long, and end when every shard has
    /// stopped (None: read forever).
    pub until_idle: Option<Duration>,
    /// Where shards stood at a checkpoint, by id: they are read from there, whatever `start`.
    pub resume: BTreeMap<String, Resume>,
    /// Read only these shards, each at once whatever its parents (a lease group's worker
    /// reads the shards it holds; a lease is only taken once its parents are finished), and
    /// look for no others (None: the whole stream).
    pub only: Option<std::collections::BTreeSet<String>>,
}

/// Where a shard known to a checkpoint is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resume {
    /// It was read to its end: not read again; its children may start.
    Finished,
    /// It is read from here.
    From(StartPosition),
}

/// What a [`StreamReader`] reports, in order per shard: `Started`, `Records`, maybe `Ended` or
/// `Idle`.
/// A shard's `Started` comes after the `Ended` of each parent it names.
#[derive(Debug)]
pub enum ShardEvent {
    /// A shard starts being read.
    Started {
        /// The shard.
        shard: String,
        /// The shards it continues (after a split or merge).
        parents: Vec<String>,
        /// The hash keys it holds.
        hash_range: HashRange,
        /// Where it is read from.
        from: StartPosition,
    },
    /// One GetRecords reply (with records, or empty).
    Records {
        /// The shard.
        shard: String,
        /// The records, in sequence order.
        records: Vec<Record>,
        /// When the call was sent.
        sent_at: Instant,
        /// When the reply arrived.
        read_at: Instant,
        /// How far behind the shard's newest record the reply left the reader, if Kinesis said.
        millis_behind_latest: Option<i64>,
        /// What the shard's reader has run into so far (cumulative).
        stats: ReaderStats,
    },
    /// The shard was read to its end.
    Ended {
        /// The shard.
        shard: String,
    },
    /// The shard has been caught up for `until_idle` and is not read again in this run.
    Idle {
        /// The shard.
        shard: String,
    },
}

/// A stream, checked to exist, with its shards.
pub struct StreamReader {
    kinesis: Kinesis,
    stream: Stream,
    options: ReadOptions,
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

impl StreamReader {
    /// The reader of `stream`; lists its shards, so a missing stream, missing credentials or an
    /// unreachable endpoint is refused here, before anything runs.
    pub async fn connect(
        kinesis: Kinesis,
        stream: Stream,
        options: ReadOptions,
    ) -> Result<Self, KinesisError> {
        let shards = reader::list_shards(&kinesis, &stream).await?;
        Ok(Self { kinesis, stream, options, shards })
    }

    /// Read until every shard is idle (with `until_idle`), a read fails, or `tx` is closed.
    pub async fn run(self, tx: mpsc::Sender<ShardEvent>) -> Result<(), KinesisError> {
        let mut tracked: BTreeMap<String, (ShardInfo, Status)> = BTreeMap::new();
        let latest = self.options.start == StartPosition::Latest;
        for shard in &self.shards {
            let status = match self.options.resume.get(&shard.id) {
                Some(Resume::Finished) => Status::Ended,
                _ if self.options.only.as_ref().is_some_and(|only| !only.contains(&shard.id)) => {
                    Status::Skipped
                }
                Some(Resume::From(_)) => Status::Waiting,
                // A lease group reads a closed shard it holds even so: at `latest` it ends at once,
                // and its lease is finished, so its children can be leased.
                None if latest && shard.closed && self.options.only.is_none() => Status::Skipped,
                None => Status::Waiting,
            };
            tracked.insert(shard.id.clone(), (shard.clone(), status));
        }
        for (id, resume) in &self.options.resume {
            if *resume != Resume::Finished && !tracked.contains_key(id) && self.options.only.is_none() {
                tracing::warn!(
                    stream = %self.stream,
                    "shard {id} of the checkpoint is no longer in the stream (older than its retention period): its records not yet processed are lost; its children start at their oldest record"
                );
            }
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
                        && (self.options.only.is_some()
                            || info.parents.iter().all(|p| {
                                tracked
                                    .get(p)
                                    .is_none_or(|(_, s)| matches!(s, Status::Ended | Status::Skipped))
                            }))
                })
                .map(|(info, _)| info.clone())
                .collect();
            let mut starts = Vec::with_capacity(ready.len());
            for info in ready {
                let child =
                    info.parents.iter().any(|p| tracked.get(p).is_some_and(|(_, s)| *s == Status::Ended));
                let start = match (self.options.resume.get(&info.id), &self.options.start) {
                    (Some(Resume::From(position)), _) => position.clone(),
                    // A child of a shard that was read starts where its parents left off.
                    _ if child => StartPosition::TrimHorizon,
                    (_, StartPosition::Latest) if first => StartPosition::Latest,
                    (_, StartPosition::AtTimestamp(t)) => StartPosition::AtTimestamp(*t),
                    _ => StartPosition::TrimHorizon,
                };
                starts.push((info, start));
            }
            // Every shard is announced before any of them is read: the watermark then waits
            // for each from the start, instead of running ahead on the first shard's records
            // and making the others' first records late.
            for (info, start) in &starts {
                let started = ShardEvent::Started {
                    shard: info.id.clone(),
                    parents: info.parents.clone(),
                    hash_range: info.hash_range,
                    from: start.clone(),
                };
                if tx.send(started).await.is_err() {
                    return Ok(());
                }
            }
            for (info, start) in starts {
                tracing::info!(
                    stream = %self.stream,
                    "reading shard {}{}",
                    info.id,
                    if info.parents.is_empty() { String::new() } else { format!(" (after {})", info.parents.join(", ")) }
                );
                let reader = ShardReader::new(
                    self.kinesis.clone(),
                    self.stream.clone(),
                    info.id.clone(),
                    start,
                    self.options.poll_interval,
                );
                let task = ReaderTask {
                    reader,
                    tx: tx.clone(),
                    notices: notice_tx.clone(),
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
                    Some(Notice::Failed(error)) => return Err(error),
                    None => return Ok(()),
                },
                Some(done) = readers.join_next() => {
                    // A reader task ends after its notice; one that ends otherwise panicked.
                    done?;
                    continue;
                }
                _ = discovery.tick() => true,
                () = tx.closed() => return Ok(()),
            };
            if rediscover && self.options.only.is_none() {
                match reader::list_shards(&self.kinesis, &self.stream).await {
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
    tx: mpsc::Sender<ShardEvent>,
    notices: mpsc::UnboundedSender<Notice>,
    until_idle: Option<Duration>,
}

impl ReaderTask {
    async fn run(mut self) {
        let shard = self.reader.shard().to_string();
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
            let caught_up = reply.caught_up();
            let records = ShardEvent::Records {
                shard: shard.clone(),
                records: reply.records,
                sent_at: reply.sent_at,
                read_at,
                millis_behind_latest: reply.millis_behind_latest,
                stats: self.reader.stats(),
            };
            if self.tx.send(records).await.is_err() {
                return;
            }
            if reply.ended {
                if self.tx.send(ShardEvent::Ended { shard: shard.clone() }).await.is_ok() {
                    let _ = self.notices.send(Notice::Ended(shard));
                }
                return;
            }
            if let Some(idle) = self.until_idle {
                let since = if caught_up { *caught_up_since.get_or_insert(read_at) } else { read_at };
                caught_up_since = caught_up.then_some(since);
                if caught_up && since.elapsed() >= idle {
                    tracing::info!("shard {shard} caught up for {idle:?}: done reading it");
                    if self.tx.send(ShardEvent::Idle { shard: shard.clone() }).await.is_err() {
                        return;
                    }
                    let _ = self.notices.send(Notice::Idle(shard));
                    return;
                }
            }
        }
    }
}
