//! Reading one shard: its GetRecords loop, and how far a position is behind its newest record.
//! The shard map and start positions are in [`crate::shards`].
//!
//! [`ShardReader`] owns a shard iterator and paces its calls: a reply that leaves the shard
//! behind (MillisBehindLatest above 0, or as many records as asked for) is followed at once;
//! an empty or caught-up reply waits the poll interval, doubling
//! while the shard stays empty up to [`MAX_IDLE_WAIT`]; a throttled or failed call backs off
//! with jitter ([`weir_aws::retry`]). An expired iterator is renewed after the last sequence number read, so
//! nothing is read twice or skipped. The end of a closed shard is reported once, as
//! [`Reply::ended`].

use std::time::Duration;

use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::primitives::DateTime;
use aws_sdk_kinesis::types::{Record, ShardIteratorType};
use weir_aws::{Backoff, Policy, Service, Transient, is_throttling};

use crate::KinesisError;
use crate::aws::{Kinesis, Stream};
use crate::shards::{ShardInfo, StartPosition};

/// The longest wait between polls of a shard that keeps returning nothing.
pub const MAX_IDLE_WAIT: Duration = Duration::from_secs(1);
/// Records asked for per GetRecords call (the service maximum).
pub const MAX_RECORDS_PER_READ: i32 = 10_000;
/// Retries of throttled or failed reads: the first after 200-400 ms, up to 5 s.
const RETRY: Policy = Policy::forever(Duration::from_millis(200), Duration::from_secs(5));
/// Calls of a one-off read (not the loop) are tried this many times before the failure is
/// reported.
const ONE_OFF_ATTEMPTS: usize = 6;

/// How far the record after `after` (or the shard's oldest, without it) is behind the shard's
/// newest, as Kinesis says for a read of one record from there: for showing how far a
/// checkpoint is behind. None when Kinesis does not say.
pub async fn millis_behind(
    kinesis: &Kinesis,
    stream: &Stream,
    shard: &str,
    after: Option<&str>,
) -> Result<Option<i64>, KinesisError> {
    let mut request = kinesis
        .client
        .get_shard_iterator()
        .set_stream_name(stream.name())
        .set_stream_arn(stream.arn())
        .shard_id(shard);
    request = match after {
        Some(sequence) => request
            .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
            .starting_sequence_number(sequence),
        None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
    };
    let what = format!("read shard {shard} of {stream}");
    let policy = RETRY.attempts(ONE_OFF_ATTEMPTS);
    let reply = weir_aws::retry(Service::Kinesis, policy, &what, || async {
        request.clone().send().await.map_err(|e| kinesis.error(&e, stream))
    })
    .await?;
    let Some(iterator) = reply.shard_iterator else { return Ok(None) };
    let reply = weir_aws::retry(Service::Kinesis, policy, &what, || async {
        let call = kinesis.client.get_records().shard_iterator(&iterator).limit(1).send().await;
        call.map_err(|e| kinesis.error(&e, stream))
    })
    .await?;
    Ok(reply.millis_behind_latest)
}

/// One GetRecords reply.
#[derive(Debug)]
pub struct Reply {
    /// When the call that got this reply was sent (the last attempt, after any retries): what
    /// an empty, caught-up reply proves is that the shard had nothing more at this moment.
    pub sent_at: std::time::Instant,
    /// The records, in sequence order.
    pub records: Vec<Record>,
    /// How far the shard's newest record is ahead of the last one returned, if Kinesis said.
    pub millis_behind_latest: Option<i64>,
    /// The shard is closed and every record of it has been returned.
    pub ended: bool,
    /// The shards that continue it, when the reply that ends it names them (SubscribeToShard's
    /// ChildShards; empty otherwise: a ListShards finds them).
    pub children: Vec<ShardInfo>,
    /// The reply cannot show where the shard stands, even empty: a pushed event that may have
    /// waited in a buffer, or no event at all (a subscription refused). Never caught up.
    pub unproven: bool,
}

impl Reply {
    /// What a reader answers once its shard has ended.
    pub fn end() -> Self {
        Reply { ended: true, ..Self::nothing() }
    }

    /// No records, and nothing learnt of the shard: what a subscriber answers when it could
    /// not subscribe, so that what it ran into is reported while it tries again.
    pub fn nothing() -> Self {
        Reply {
            sent_at: std::time::Instant::now(),
            records: Vec::new(),
            millis_behind_latest: None,
            ended: false,
            children: Vec::new(),
            unproven: true,
        }
    }

    /// Nothing was returned and nothing is waiting: the reader is at the current end of an
    /// open shard, so nothing written before the call was sent is left to read from it. Not the
    /// reply that ends a closed shard: records written since it closed are in its children.
    pub fn caught_up(&self) -> bool {
        self.records.is_empty()
            && self.millis_behind_latest.unwrap_or(0) == 0
            && !self.ended
            && !self.unproven
    }
}

/// What a reader has run into so far (polling or subscribed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReaderStats {
    /// Calls refused for throughput (ProvisionedThroughputExceeded, LimitExceeded, throttling).
    pub throttles: u64,
    /// Calls retried after any transient failure (throttles included).
    pub retries: u64,
    /// Expired iterators replaced.
    pub renewals: u64,
    /// Start positions (sequence numbers of a checkpoint) older than the shard keeps: read
    /// from its oldest record instead.
    pub expired_positions: u64,
    /// Subscriptions made (enhanced fan-out).
    pub subscribed: u64,
    /// Subscriptions renewed at the end of their life (enhanced fan-out).
    pub renewed: u64,
    /// Subscriptions made again after sending nothing for the inactivity deadline.
    pub resubscribed_inactive: u64,
    /// Subscriptions made again after they ended early: the connection failed or was closed,
    /// or the service ended them.
    pub resubscribed_dropped: u64,
    /// Subscribe calls (or subscriptions) refused with ResourceInUseException.
    pub in_use: u64,
    /// Events received from subscriptions.
    pub events: u64,
}

/// Reads one shard, in order, from a start position to its end (if it ever closes).
pub struct ShardReader {
    kinesis: Kinesis,
    stream: Stream,
    shard: String,
    start: StartPosition,
    poll_interval: Duration,
    iterator: Option<String>,
    last_sequence: Option<String>,
    next_call: Option<tokio::time::Instant>,
    empty_replies: u32,
    ended: bool,
    stats: ReaderStats,
}

impl ShardReader {
    /// A reader of `shard` from `start`, polling an empty shard every `poll_interval` at first.
    pub fn new(
        kinesis: Kinesis,
        stream: Stream,
        shard: String,
        start: StartPosition,
        poll_interval: Duration,
    ) -> Self {
        Self {
            kinesis,
            stream,
            shard,
            start,
            poll_interval,
            iterator: None,
            last_sequence: None,
            next_call: None,
            empty_replies: 0,
            ended: false,
            stats: ReaderStats::default(),
        }
    }

    /// The shard read.
    pub fn shard(&self) -> &str {
        &self.shard
    }

    /// What went wrong so far.
    pub fn stats(&self) -> ReaderStats {
        self.stats
    }

    /// The next reply, after the pacing wait. Transient failures are retried here (with
    /// backoff, counted in [`ShardReader::stats`]); an error is one that retrying cannot fix.
    /// After a reply with `ended`, there is nothing more to read.
    pub async fn next(&mut self) -> Result<Reply, KinesisError> {
        if self.ended {
            return Ok(Reply::end());
        }
        if let Some(at) = self.next_call.take() {
            tokio::time::sleep_until(at).await;
        }
        let mut delays = Backoff::new(Service::Kinesis, RETRY);
        loop {
            let iterator = match &self.iterator {
                Some(iterator) => iterator.clone(),
                None => self.new_iterator().await?,
            };
            let sent_at = std::time::Instant::now();
            let call = self
                .kinesis
                .client
                .get_records()
                .shard_iterator(&iterator)
                .limit(MAX_RECORDS_PER_READ)
                .send()
                .await;
            let reply = match call {
                Ok(reply) => reply,
                Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("ExpiredIteratorException") => {
                    self.stats.renewals += 1;
                    self.iterator = None;
                    continue;
                }
                Err(e) if e.is_transient() => {
                    self.stats.retries += 1;
                    if is_throttling(e.as_service_error().and_then(|s| s.code())) {
                        self.stats.throttles += 1;
                    }
                    let delay = delays.next_delay();
                    if delays.loud() {
                        tracing::warn!(
                            shard = %self.shard,
                            "GetRecords on {} failed {} times ({}); retrying in {delay:?}",
                            self.stream,
                            delays.attempts(),
                            self.kinesis.error(&e, &self.stream)
                        );
                    }
                    tokio::time::sleep(delay).await;
                    continue;
                }
                Err(e) => return Err(self.kinesis.error(&e, &self.stream)),
            };
            let records = reply.records;
            if let Some(last) = records.last() {
                self.last_sequence = Some(last.sequence_number.clone());
            }
            self.iterator = reply.next_shard_iterator;
            self.ended = self.iterator.is_none();
            let reply = Reply {
                sent_at,
                records,
                millis_behind_latest: reply.millis_behind_latest,
                ended: self.ended,
                children: Vec::new(),
                unproven: false,
            };
            let wait = self.pace(&reply);
            self.next_call = (!wait.is_zero()).then(|| tokio::time::Instant::now() + wait);
            return Ok(reply);
        }
    }

    /// How long to wait before the next call: nothing while behind, longer while empty. A
    /// full reply means more records wait whatever MillisBehindLatest says (ferrokinesis
    /// reports 0 on every reply with records: trusting it alone waited the poll interval after
    /// each 10,000 records of a backlog).
    fn pace(&mut self, reply: &Reply) -> Duration {
        let full = reply.records.len() >= MAX_RECORDS_PER_READ as usize;
        if !reply.records.is_empty() && (full || reply.millis_behind_latest.unwrap_or(0) > 0) {
            self.empty_replies = 0;
            return Duration::ZERO;
        }
        if reply.records.is_empty() {
            self.empty_replies = self.empty_replies.saturating_add(1);
        } else {
            self.empty_replies = 0;
        }
        self.poll_interval
            .saturating_mul(1 << self.empty_replies.saturating_sub(1).min(8))
            .min(MAX_IDLE_WAIT.max(self.poll_interval))
    }

    async fn new_iterator(&mut self) -> Result<String, KinesisError> {
        let mut request = self
            .kinesis
            .client
            .get_shard_iterator()
            .set_stream_name(self.stream.name())
            .set_stream_arn(self.stream.arn())
            .shard_id(&self.shard);
        let position = match &self.last_sequence {
            Some(sequence) => StartPosition::AfterSequenceNumber(sequence.clone()),
            None => self.start.clone(),
        };
        request = match position {
            StartPosition::Latest => request.shard_iterator_type(ShardIteratorType::Latest),
            StartPosition::TrimHorizon => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            StartPosition::AtTimestamp(t) => request
                .shard_iterator_type(ShardIteratorType::AtTimestamp)
                .timestamp(DateTime::from_millis(t.as_millisecond())),
            StartPosition::AfterSequenceNumber(sequence) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(sequence),
        };
        let mut delays = Backoff::new(Service::Kinesis, RETRY);
        loop {
            match request.clone().send().await {
                Ok(reply) => {
                    return reply.shard_iterator.ok_or_else(|| KinesisError::NoIterator {
                        stream: self.stream.clone(),
                        endpoint: self.kinesis.endpoint.clone(),
                        shard: self.shard.clone(),
                    });
                }
                Err(e) if e.is_transient() => {
                    self.stats.retries += 1;
                    tokio::time::sleep(delays.next_delay()).await;
                }
                Err(e)
                    if self.last_sequence.is_none()
                        && self.start.expired(
                            e.as_service_error().and_then(|s| s.code()),
                            &self.shard,
                            &self.stream,
                            &self.kinesis.error(&e, &self.stream),
                            &mut self.stats,
                        ) =>
                {
                    request = request
                        .shard_iterator_type(ShardIteratorType::TrimHorizon)
                        .set_starting_sequence_number(None);
                }
                Err(e) => return Err(self.kinesis.error(&e, &self.stream)),
            }
        }
    }
}

impl StartPosition {
    /// Whether a read from here was refused (`code`) because the stream no longer holds the
    /// position (a checkpoint's sequence number older than the retention period): if so, it is
    /// said and counted, and the position becomes the shard's oldest record.
    pub(crate) fn expired(
        &mut self,
        code: Option<&str>,
        shard: &str,
        stream: &Stream,
        error: &KinesisError,
        stats: &mut ReaderStats,
    ) -> bool {
        if !matches!(self, StartPosition::AfterSequenceNumber(_)) || code != Some("InvalidArgumentException")
        {
            return false;
        }
        tracing::warn!(
            shard = %shard,
            "the position to resume shard {shard} of {stream} from is no longer in the stream ({error}): reading from its oldest record (trim-horizon); records between were lost to the retention period"
        );
        stats.expired_positions += 1;
        *self = StartPosition::TrimHorizon;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(poll: Duration) -> ShardReader {
        ShardReader::new(Kinesis::offline(), Stream("s".into()), "shard".into(), StartPosition::Latest, poll)
    }

    /// A reply of `records` records that left the reader `behind` ms behind.
    fn reply(records: usize, behind: Option<i64>, ended: bool) -> Reply {
        let record = Record::builder()
            .sequence_number("1")
            .data(aws_sdk_kinesis::primitives::Blob::new("x"))
            .partition_key("k")
            .build()
            .unwrap();
        let sent_at = std::time::Instant::now();
        Reply {
            sent_at,
            records: vec![record; records],
            millis_behind_latest: behind,
            ended,
            children: Vec::new(),
            unproven: false,
        }
    }

    fn wait_after(reader: &mut ShardReader, records: usize, behind: i64) -> Duration {
        reader.pace(&reply(records, Some(behind), false))
    }

    #[test]
    fn only_an_empty_reply_at_the_open_end_of_a_shard_is_caught_up() {
        assert!(reply(0, Some(0), false).caught_up());
        assert!(!reply(1, Some(0), false).caught_up(), "records came");
        assert!(!reply(0, Some(500), false).caught_up(), "records are waiting");
        assert!(!reply(0, Some(0), true).caught_up(), "the end of a closed shard: its children go on");
    }

    #[test]
    fn a_shard_behind_is_read_at_once_and_an_empty_one_ever_more_slowly_up_to_a_second() {
        let ms = Duration::from_millis;
        let mut r = reader(ms(200));
        assert_eq!(wait_after(&mut r, 10, 5_000), Duration::ZERO, "behind: at once");
        assert_eq!(
            wait_after(&mut r, MAX_RECORDS_PER_READ as usize, 0),
            Duration::ZERO,
            "a full reply: at once"
        );
        assert_eq!(wait_after(&mut r, 10, 0), ms(200), "caught up with records: the poll interval");
        let waits: Vec<Duration> = (0..5).map(|_| wait_after(&mut r, 0, 0)).collect();
        assert_eq!(waits, [ms(200), ms(400), ms(800), ms(1000), ms(1000)]);
        assert_eq!(wait_after(&mut r, 3, 0), ms(200), "records again: back to the interval");
        let mut slow = reader(ms(1500));
        assert_eq!(wait_after(&mut slow, 0, 0), ms(1500), "an interval above the cap is kept");
    }
}
