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
use crate::reader::{ReaderStats, ShardReader};
use crate::shards::{self, HashRange, ShardInfo, StartPosition};
use crate::subscription::{FanOut, ShardSubscriber};

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
    /// Read through enhanced fan-out as this consumer (None: poll with GetRecords).
    pub fan_out: Option<FanOut>,
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
        /// The reply was empty at the open end of the shard: nothing written before it was
        /// sent is left to read from the shard. Never for the reply that ends a closed shard:
        /// records written since it closed are in its children, and may be older than what
        /// other shards had by then.
        caught_up: bool,
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
    /// The shard ended; its children, when the last reply named them.
    Ended(String, Vec<ShardInfo>),
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
        let shards = shards::list_shards(&kinesis, &stream).await?;
        Ok(Self { kinesis, stream, options, shards })
    }

    /// Read until every shard is idle (with `until_idle`), a read fails, or `tx` is closed.
    pub async fn run(self, tx: mpsc::Sender<ShardEvent>) -> Result<(), KinesisError> {
        let mut lineage = Lineage::new(&self.shards, &self.options);
        for (id, resume) in &self.options.resume {
            if *resume != Resume::Finished && !lineage.knows(id) && self.options.only.is_none() {
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
        // The children named by the end of a shard (SubscribeToShard's ChildShards).
        let mut named_children: Vec<ShardInfo> = Vec::new();
        loop {
            let starts = lineage.ready(&self.options, first);
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
                let reader = ShardFeed::new(
                    self.kinesis.clone(),
                    self.stream.clone(),
                    info.id.clone(),
                    start,
                    self.options.poll_interval,
                    self.options.fan_out.as_ref(),
                );
                let task = ReaderTask {
                    reader,
                    tx: tx.clone(),
                    notices: notice_tx.clone(),
                    until_idle: self.options.until_idle,
                };
                readers.spawn(task.run());
                lineage.set(&info.id, Status::Reading);
            }
            first = false;
            if self.options.until_idle.is_some() && lineage.quiet() {
                // Every shard went idle or ended, and no child is ready: the input ends.
                return Ok(());
            }
            let rediscover = tokio::select! {
                notice = notices.recv() => match notice {
                    Some(Notice::Ended(shard, children)) => {
                        tracing::info!(stream = %self.stream, "shard {shard} read to its end");
                        lineage.set(&shard, Status::Ended);
                        named_children = children;
                        true
                    }
                    Some(Notice::Idle(shard)) => {
                        lineage.set(&shard, Status::Idle);
                        // A last look for children, so none is left out of the run.
                        lineage.quiet()
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
                // A listing, not the ChildShards an end named, says which shards a child
                // continues: ferrokinesis 0.7.0 names only one parent of a merge in them. They
                // stand in when the listing fails.
                match shards::list_shards(&self.kinesis, &self.stream).await {
                    Ok(shards) => lineage.discovered(shards),
                    Err(e) => {
                        tracing::warn!("cannot list the shards of {}, will try again: {e}", self.stream);
                        lineage.discovered(std::mem::take(&mut named_children));
                    }
                }
            }
            named_children.clear();
        }
    }
}

/// Where every shard of the stream stands in this run, and which may be read next: a shard
/// starts once each of its parents has ended or is not read in this run (a merge waits for
/// both); a lease group's reader (`only`) starts the shards it holds at once, since the lease
/// table already orders them.
struct Lineage {
    tracked: BTreeMap<String, (ShardInfo, Status)>,
}

impl Lineage {
    /// The shards listed at start, with what `options` says of each.
    fn new(shards: &[ShardInfo], options: &ReadOptions) -> Self {
        let latest = options.start == StartPosition::Latest;
        let tracked = shards
            .iter()
            .map(|shard| {
                let status = match options.resume.get(&shard.id) {
                    Some(Resume::Finished) => Status::Ended,
                    _ if options.only.as_ref().is_some_and(|only| !only.contains(&shard.id)) => {
                        Status::Skipped
                    }
                    Some(Resume::From(_)) => Status::Waiting,
                    // A lease group reads a closed shard it holds even so: at `latest` it ends at
                    // once, and its lease is finished, so its children can be leased.
                    // A closed child of a shard the checkpoint finished is not: its records
                    // come after what was read (the cut fell between the parent's end and the
                    // children's start).
                    None if latest
                        && shard.closed
                        && options.only.is_none()
                        && !shard
                            .parents
                            .iter()
                            .any(|p| options.resume.get(p) == Some(&Resume::Finished)) =>
                    {
                        Status::Skipped
                    }
                    None => Status::Waiting,
                };
                (shard.id.clone(), (shard.clone(), status))
            })
            .collect();
        Self { tracked }
    }

    fn knows(&self, shard: &str) -> bool {
        self.tracked.contains_key(shard)
    }

    fn set(&mut self, shard: &str, status: Status) {
        if let Some(entry) = self.tracked.get_mut(shard) {
            entry.1 = status;
        }
    }

    /// Whether no shard is being read.
    fn quiet(&self) -> bool {
        self.tracked.values().all(|(_, s)| *s != Status::Reading)
    }

    /// Shards found by a later listing (known ones keep their status).
    fn discovered(&mut self, shards: Vec<ShardInfo>) {
        for shard in shards {
            self.tracked.entry(shard.id.clone()).or_insert_with(|| (shard, Status::Waiting));
        }
    }

    /// The shards that may start now, each with where it starts (`first`: the run's first
    /// look, when `latest` still means the newest record).
    fn ready(&self, options: &ReadOptions, first: bool) -> Vec<(ShardInfo, StartPosition)> {
        let done = |p: &String| {
            self.tracked.get(p).is_none_or(|(_, s)| matches!(s, Status::Ended | Status::Skipped))
        };
        self.tracked
            .values()
            .filter(|(info, status)| {
                *status == Status::Waiting && (options.only.is_some() || info.parents.iter().all(done))
            })
            .map(|(info, _)| {
                let child = info
                    .parents
                    .iter()
                    .any(|p| self.tracked.get(p).is_some_and(|(_, s)| *s == Status::Ended));
                let start = match (options.resume.get(&info.id), &options.start) {
                    (Some(Resume::From(position)), _) => position.clone(),
                    // A child of a shard that was read starts where its parents left off.
                    _ if child => StartPosition::TrimHorizon,
                    (_, StartPosition::Latest) if first => StartPosition::Latest,
                    (_, StartPosition::AtTimestamp(t)) => StartPosition::AtTimestamp(*t),
                    _ => StartPosition::TrimHorizon,
                };
                (info.clone(), start)
            })
            .collect()
    }
}

/// How a shard is read: polled with GetRecords, or pushed through a subscription.
pub enum ShardFeed {
    /// GetRecords.
    Poll(Box<ShardReader>),
    /// SubscribeToShard.
    Push(Box<ShardSubscriber>),
}

impl ShardFeed {
    /// A reader of `shard` from `start`: through `fan_out`'s subscriptions if given, else
    /// polling every `poll_interval` at first.
    pub fn new(
        kinesis: Kinesis,
        stream: Stream,
        shard: String,
        start: StartPosition,
        poll_interval: Duration,
        fan_out: Option<&FanOut>,
    ) -> Self {
        match fan_out {
            Some(fan_out) => {
                Self::Push(Box::new(ShardSubscriber::new(kinesis, stream, shard, start, fan_out.clone())))
            }
            None => Self::Poll(Box::new(ShardReader::new(kinesis, stream, shard, start, poll_interval))),
        }
    }

    /// The shard read.
    pub fn shard(&self) -> &str {
        match self {
            Self::Poll(reader) => reader.shard(),
            Self::Push(subscriber) => subscriber.shard(),
        }
    }

    /// What the reader has run into so far.
    pub fn stats(&self) -> ReaderStats {
        match self {
            Self::Poll(reader) => reader.stats(),
            Self::Push(subscriber) => subscriber.stats(),
        }
    }

    /// The next reply (see [`ShardReader::next`] and [`ShardSubscriber::next`]).
    pub async fn next(&mut self) -> Result<crate::reader::Reply, KinesisError> {
        match self {
            Self::Poll(reader) => reader.next().await,
            Self::Push(subscriber) => subscriber.next().await,
        }
    }
}

/// One shard's reading loop.
struct ReaderTask {
    reader: ShardFeed,
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
            // An empty reply that proves nothing (a pushed event that may have waited, a
            // subscription refused) neither ends nor extends a caught-up stretch.
            let neutral = reply.unproven && reply.records.is_empty();
            let records = ShardEvent::Records {
                shard: shard.clone(),
                records: reply.records,
                sent_at: reply.sent_at,
                read_at,
                millis_behind_latest: reply.millis_behind_latest,
                caught_up,
                stats: self.reader.stats(),
            };
            if self.tx.send(records).await.is_err() {
                return;
            }
            if reply.ended {
                if self.tx.send(ShardEvent::Ended { shard: shard.clone() }).await.is_ok() {
                    let _ = self.notices.send(Notice::Ended(shard, reply.children));
                }
                return;
            }
            if let Some(idle) = self.until_idle
                && !neutral
            {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(id: &str, parents: &[&str], closed: bool) -> ShardInfo {
        ShardInfo {
            id: id.to_string(),
            parents: parents.iter().map(|p| p.to_string()).collect(),
            hash_range: HashRange { start: 0, end: u128::MAX },
            closed,
        }
    }

    fn options(start: StartPosition) -> ReadOptions {
        ReadOptions {
            start,
            poll_interval: Duration::from_secs(1),
            discovery_interval: Duration::from_secs(10),
            until_idle: None,
            resume: BTreeMap::new(),
            only: None,
            fan_out: None,
        }
    }

    fn ids(ready: &[(ShardInfo, StartPosition)]) -> Vec<&str> {
        ready.iter().map(|(s, _)| s.id.as_str()).collect()
    }

    /// A split (`p` into `a`, `b`) then a merge (`a`, `b` into `m`).
    fn split_and_merge() -> Vec<ShardInfo> {
        vec![
            shard("p", &[], true),
            shard("a", &["p"], true),
            shard("b", &["p"], true),
            shard("m", &["a", "b"], false),
        ]
    }

    #[test]
    fn parents_are_read_before_children_and_a_merge_waits_for_both_parents() {
        let options = options(StartPosition::TrimHorizon);
        let mut lineage = Lineage::new(&split_and_merge(), &options);
        assert_eq!(ids(&lineage.ready(&options, true)), ["p"]);
        lineage.set("p", Status::Reading);
        assert!(lineage.ready(&options, false).is_empty(), "the children wait while the parent is read");
        lineage.set("p", Status::Ended);
        let children = lineage.ready(&options, false);
        assert_eq!(ids(&children), ["a", "b"]);
        assert!(children.iter().all(|(_, start)| *start == StartPosition::TrimHorizon));
        lineage.set("a", Status::Ended);
        lineage.set("b", Status::Reading);
        assert!(lineage.ready(&options, false).is_empty(), "the merge waits for its second parent");
        lineage.set("b", Status::Ended);
        assert_eq!(ids(&lineage.ready(&options, false)), ["m"]);
    }

    #[test]
    fn at_latest_closed_shards_are_skipped_and_open_ones_start_at_their_newest_record() {
        let options = options(StartPosition::Latest);
        let lineage = Lineage::new(&split_and_merge(), &options);
        let ready = lineage.ready(&options, true);
        assert_eq!(ids(&ready), ["m"]);
        assert_eq!(ready[0].1, StartPosition::Latest);
    }

    #[test]
    fn a_child_of_a_shard_read_to_its_end_starts_at_its_beginning_even_at_latest() {
        let options = options(StartPosition::Latest);
        let mut lineage = Lineage::new(&[shard("p", &[], false)], &options);
        lineage.set("p", Status::Reading);
        lineage.set("p", Status::Ended);
        lineage.discovered(vec![shard("p", &[], true), shard("c", &["p"], false)]);
        assert_eq!(lineage.ready(&options, false), [(shard("c", &["p"], false), StartPosition::TrimHorizon)]);
    }

    #[test]
    fn a_resumed_run_takes_finished_shards_as_ended_and_goes_on_where_the_others_stood() {
        let mut options = options(StartPosition::Latest);
        let after = StartPosition::AfterSequenceNumber("42".to_string());
        options.resume = BTreeMap::from([
            ("p".to_string(), Resume::Finished),
            ("a".to_string(), Resume::From(after.clone())),
        ]);
        let lineage = Lineage::new(&split_and_merge(), &options);
        let ready = lineage.ready(&options, true);
        assert_eq!(ids(&ready), ["a", "b"], "p finished: both children may start");
        assert_eq!(ready[0].1, after, "a goes on after its checkpointed record");
        assert_eq!(
            ready[1].1,
            StartPosition::TrimHorizon,
            "b, unknown to the checkpoint, starts at its beginning"
        );
    }

    #[test]
    fn a_lease_group_reader_starts_the_shards_it_holds_without_waiting_for_parents() {
        let mut options = options(StartPosition::TrimHorizon);
        options.only = Some(["a".to_string()].into());
        let lineage = Lineage::new(&split_and_merge(), &options);
        assert_eq!(ids(&lineage.ready(&options, true)), ["a"], "the lease table ordered it already");
    }
}
