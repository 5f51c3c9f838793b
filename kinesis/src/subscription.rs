//! Reading one shard through enhanced fan-out: a [`ShardSubscriber`] keeps a SubscribeToShard
//! subscription open as a consumer and turns its events into the same [`Reply`]s a polling
//! [`crate::ShardReader`] gives, so everything downstream reads both alike.
//!
//! A subscription never stalls silently:
//! - it is **renewed** from the last ContinuationSequenceNumber before the service's 5 minutes
//!   end ([`FanOut::renew_after`]); one that ends before (its connection closed, another
//!   reader took it over) is made again after a backoff (1 s at first, longer each time until
//!   an event comes);
//! - a subscription that sends nothing for [`FanOut::inactivity`] (AWS sends an event at least
//!   every 5 s, even with no records) is dropped and **resubscribed**, as is one whose
//!   connection fails;
//! - ResourceInUseException (another reader holds this consumer's subscription to the shard,
//!   or the last one is less than 5 s old) and throttles are retried with backoff, and the
//!   one-call-per-second-per-shard rule is kept before every call;
//! - at a shard's end (an empty ContinuationSequenceNumber, or ChildShards with no records) the
//!   reply says `ended` and carries the children.
//!
//! Every resubscription starts after the last event taken, so nothing is read twice or skipped.
//!
//! **What an empty event vouches for.** A poll proves that the shard had nothing more when the
//! call was sent. A pushed event has no such instant: it may have waited in a buffer. An empty
//! event with MillisBehindLatest 0 counts as caught up, standing for a read sent
//! [`PUSH_ALLOWANCE`] before the reader started waiting for it, only when the reader had to
//! wait for it ([`MIN_WAIT`]: it was not already buffered) and had taken the previous event
//! without being held up by its consumer. Otherwise it is an empty reply that proves nothing.

use std::time::{Duration, Instant};

use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::primitives::DateTime;
use aws_sdk_kinesis::primitives::event_stream::EventReceiver;
use aws_sdk_kinesis::types::error::SubscribeToShardEventStreamError;
use aws_sdk_kinesis::types::{
    ShardIteratorType, StartingPosition, SubscribeToShardEvent, SubscribeToShardEventStream,
};
use weir_aws::{Backoff, Policy, Service, Transient, is_throttling};

use crate::KinesisError;
use crate::aws::{Kinesis, Stream};
use crate::reader::{ReaderStats, Reply};
use crate::shards::{ShardInfo, StartPosition, parse_range};

/// The service ends a subscription after 5 minutes.
pub const SUBSCRIPTION_LIFETIME: Duration = Duration::from_secs(300);
/// At most one SubscribeToShard per second per consumer and shard.
const CALL_SPACING: Duration = Duration::from_secs(1);
/// Retries of failed subscribe calls and subscriptions: from 1 s (the service's spacing) up to
/// 10 s.
const RETRY: Policy = Policy::forever(Duration::from_secs(1), Duration::from_secs(10));
/// Retries of a subscription refused as in use (ResourceInUseException): every 1 to 2 s. The
/// refusal has a known end (the service's 5 s between two subscriptions, an emulator's lag in
/// letting a renewed one go, another reader stopping), and a growing wait would leave the shard
/// unread for up to 10 s after it ends.
const IN_USE_RETRY: Policy = Policy::forever(Duration::from_secs(1), Duration::from_secs(2));
/// An empty event counts as caught up only if the reader waited at least this long for it.
pub const MIN_WAIT: Duration = Duration::from_millis(5);
/// How long before the reader started waiting an empty, caught-up event stands for: more than
/// an event takes from the service to the reader.
pub const PUSH_ALLOWANCE: Duration = Duration::from_millis(500);
/// How often a caught-up shard is listed to see whether it closed, when its subscription does
/// not say (no ChildShards).
const CLOSE_CHECK: Duration = Duration::from_secs(10);
/// The reader counts as held up when it took the previous event this long before asking for
/// the next one.
const HELD_UP: Duration = Duration::from_millis(50);

/// How subscriptions are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FanOut {
    /// The consumer's ARN.
    pub consumer_arn: String,
    /// A subscription is renewed after this long (before the service ends it at 5 minutes).
    pub renew_after: Duration,
    /// A subscription that sends no event for this long is dropped and made again.
    pub inactivity: Duration,
}

impl FanOut {
    /// Subscriptions as `consumer_arn`, renewed 10 s before the service would end them, dropped
    /// after 15 s without an event (three of AWS's 5-second heartbeats missed).
    pub fn new(consumer_arn: String) -> Self {
        Self {
            consumer_arn,
            renew_after: SUBSCRIPTION_LIFETIME - Duration::from_secs(10),
            inactivity: Duration::from_secs(15),
        }
    }
}

/// Why a subscription was made again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Again {
    /// It had lasted `renew_after`.
    Renewed,
    /// No event for `inactivity`.
    Inactive,
    /// It ended early: the connection failed or was closed, or the service ended it (with an
    /// error, or because another reader took it over).
    Dropped,
    /// The service refused it with ResourceInUseException (in the call or in the stream).
    InUse,
}

/// Reads one shard through SubscribeToShard, in order, from a start position to its end.
pub struct ShardSubscriber {
    kinesis: Kinesis,
    stream: Stream,
    shard: String,
    fan_out: FanOut,
    start: StartPosition,
    /// Where the next subscription starts: after this ContinuationSequenceNumber.
    continuation: Option<String>,
    /// The open subscription (boxed: a receiver is large, and most of the time one is open).
    events: Option<Box<EventReceiver<SubscribeToShardEventStream, SubscribeToShardEventStreamError>>>,
    subscribed_at: tokio::time::Instant,
    last_event_at: Option<tokio::time::Instant>,
    last_call: Option<tokio::time::Instant>,
    /// Whether the last event was taken without the reader being held up before it.
    steady: bool,
    /// Backoff over failed subscribe calls and failed subscriptions, until an event comes.
    failures: Option<Backoff>,
    /// Backoff over refusals as in use in a row (used instead of `failures` while set).
    in_use: Option<Backoff>,
    /// When a listing last showed whether the shard is closed, and whether it was.
    close_check: Option<(tokio::time::Instant, bool)>,
    ended: bool,
    stats: ReaderStats,
}

impl ShardSubscriber {
    /// A subscriber of `shard` from `start` as `fan_out`'s consumer.
    pub fn new(
        kinesis: Kinesis,
        stream: Stream,
        shard: String,
        start: StartPosition,
        fan_out: FanOut,
    ) -> Self {
        Self {
            kinesis,
            stream,
            shard,
            fan_out,
            start,
            continuation: None,
            events: None,
            subscribed_at: tokio::time::Instant::now(),
            last_event_at: None,
            last_call: None,
            steady: false,
            failures: None,
            in_use: None,
            close_check: None,
            ended: false,
            stats: ReaderStats::default(),
        }
    }

    /// The shard read.
    pub fn shard(&self) -> &str {
        &self.shard
    }

    /// What happened so far.
    pub fn stats(&self) -> ReaderStats {
        self.stats
    }

    /// The next event as a reply. Subscribing, renewing and resubscribing happen here (counted
    /// in [`ShardSubscriber::stats`]); an error is one that retrying cannot fix.
    pub async fn next(&mut self) -> Result<Reply, KinesisError> {
        if self.ended {
            return Ok(Reply::end());
        }
        let asked_at = tokio::time::Instant::now();
        let held_up = self.last_event_at.is_some_and(|at| asked_at - at > HELD_UP);
        if held_up {
            self.steady = false;
        }
        loop {
            if self.events.is_none() && !self.subscribe().await? {
                // Refused: report it (the stats) before trying again.
                return Ok(Reply::nothing());
            }
            let renew_at = self.subscribed_at + self.fan_out.renew_after;
            let quiet_at = self.last_event_at.unwrap_or(self.subscribed_at).max(self.subscribed_at)
                + self.fan_out.inactivity;
            let Some(events) = self.events.as_mut() else { continue };
            let waiting_since = tokio::time::Instant::now();
            let received = tokio::select! {
                received = events.recv() => received,
                () = tokio::time::sleep_until(renew_at.min(quiet_at)) => {
                    if renew_at <= quiet_at {
                        self.again(Again::Renewed, None);
                        continue;
                    }
                    self.again(Again::Inactive, None);
                    return Ok(Reply::nothing());
                }
            };
            let now = tokio::time::Instant::now();
            match received {
                Ok(Some(SubscribeToShardEventStream::SubscribeToShardEvent(event))) => {
                    let waited = now - waiting_since;
                    let steady = self.steady && !held_up;
                    self.last_event_at = Some(now);
                    self.steady = true;
                    self.failures = None;
                    self.in_use = None;
                    self.stats.events += 1;
                    let mut reply = self.reply(event, steady && waited >= MIN_WAIT, waiting_since.into_std());
                    if reply.caught_up() {
                        self.end_if_closed(&mut reply).await;
                    }
                    return Ok(reply);
                }
                Ok(Some(_unknown)) => {
                    self.last_event_at = Some(now);
                    continue;
                }
                // The subscription ended before weir renewed it: the connection was closed, or
                // another reader took the consumer's subscription to this shard over.
                Ok(None) => {
                    self.again(Again::Dropped, None);
                    return Ok(Reply::nothing());
                }
                Err(e) => {
                    tracing::debug!(shard = %self.shard, "subscription failed: {e:?}");
                    let in_use = e
                        .as_service_error()
                        .is_some_and(SubscribeToShardEventStreamError::is_resource_in_use_exception);
                    let error = self.kinesis.error(&e, &self.stream);
                    self.again(if in_use { Again::InUse } else { Again::Dropped }, Some(&error));
                    return Ok(Reply::nothing());
                }
            }
        }
    }

    /// Drop the subscription (if one is open), to be made again after the last event taken:
    /// at once after a renewal, after a backoff otherwise.
    fn again(&mut self, why: Again, error: Option<&KinesisError>) {
        self.events = None;
        self.steady = false;
        if why == Again::InUse {
            self.in_use.get_or_insert_with(|| Backoff::new(Service::Kinesis, IN_USE_RETRY));
        } else if why != Again::Renewed {
            // The next subscription waits, longer each time until an event comes.
            self.failures.get_or_insert_with(|| Backoff::new(Service::Kinesis, RETRY));
            self.in_use = None;
        }
        match why {
            Again::Renewed => self.stats.renewed += 1,
            Again::Inactive => {
                self.stats.resubscribed_inactive += 1;
                tracing::warn!(
                    shard = %self.shard,
                    "the subscription to shard {} of {} sent nothing for {:?}: subscribing again",
                    self.shard,
                    self.stream,
                    self.fan_out.inactivity
                );
            }
            Again::InUse => {
                self.stats.in_use += 1;
                // Within 5 s of the last subscription that is the service's rule; for longer,
                // another reader holds this consumer's subscription to the shard.
                if self.in_use.as_ref().is_some_and(|delays| delays.attempts() >= 5) {
                    tracing::warn!(
                        shard = %self.shard,
                        "cannot subscribe to shard {} of {} as {}: another reader holds this consumer's subscription to it ({}); does a second weir use the same --efo-consumer? Trying again",
                        self.shard,
                        self.stream,
                        self.fan_out.consumer_arn,
                        error.map_or_else(|| "in use".to_string(), ToString::to_string)
                    );
                }
            }
            Again::Dropped => {
                self.stats.resubscribed_dropped += 1;
                tracing::warn!(
                    shard = %self.shard,
                    "the subscription to shard {} of {} ended early ({}): subscribing again",
                    self.shard,
                    self.stream,
                    error.map_or_else(|| "its connection was closed".to_string(), ToString::to_string)
                );
            }
        }
    }

    fn reply(&mut self, event: SubscribeToShardEvent, vouches: bool, waiting_since: Instant) -> Reply {
        let SubscribeToShardEvent {
            records,
            continuation_sequence_number,
            millis_behind_latest,
            child_shards,
            ..
        } = event;
        tracing::debug!(
            shard = %self.shard,
            records = records.len(),
            continuation = %continuation_sequence_number,
            millis_behind_latest,
            children = child_shards.as_ref().map_or(0, Vec::len),
            "event"
        );
        let children: Vec<ShardInfo> = child_shards
            .unwrap_or_default()
            .into_iter()
            .filter_map(|child| {
                Some(ShardInfo {
                    hash_range: parse_range(child.hash_key_range.as_ref())?,
                    id: child.shard_id,
                    parents: child.parent_shards,
                    closed: false,
                })
            })
            .collect();
        // AWS ends a shard with no continuation; ferrokinesis with ChildShards and no records.
        let ended = continuation_sequence_number.is_empty() || (!children.is_empty() && records.is_empty());
        if !continuation_sequence_number.is_empty() {
            self.continuation = Some(continuation_sequence_number);
        }
        if ended {
            self.ended = true;
            self.events = None;
        }
        Reply {
            sent_at: waiting_since.checked_sub(PUSH_ALLOWANCE).unwrap_or(waiting_since),
            records,
            millis_behind_latest: Some(millis_behind_latest),
            ended,
            children,
            // It may have waited in a buffer: no proof of where the shard stands.
            unproven: !vouches,
        }
    }

    /// A caught-up reply of a shard without ChildShards at its end (kinesis-local sends none:
    /// its closed shards go on sending empty events): the shard has ended once a listing made
    /// before the reply's instant says it is closed. A caught-up shard is listed at once, then
    /// at most every [`CLOSE_CHECK`].
    async fn end_if_closed(&mut self, reply: &mut Reply) {
        if let Some((listed_at, true)) = self.close_check
            && reply.sent_at >= listed_at.into_std()
        {
            tracing::info!(
                shard = %self.shard,
                "shard {} of {} is closed and every record of it was read (no ChildShards were sent)",
                self.shard,
                self.stream
            );
            reply.ended = true;
            self.ended = true;
            self.events = None;
            return;
        }
        if self.close_check.is_some_and(|(at, closed)| closed || at.elapsed() < CLOSE_CHECK) {
            return;
        }
        let listed_at = tokio::time::Instant::now();
        match crate::shards::list_shards(&self.kinesis, &self.stream).await {
            Ok(shards) => {
                let closed = shards.iter().any(|s| s.id == self.shard && s.closed);
                self.close_check = Some((listed_at, closed));
            }
            Err(e) => {
                tracing::warn!(shard = %self.shard, "cannot list the shards of {}, will try again: {e}", self.stream);
                self.close_check = Some((listed_at, false));
            }
        }
    }

    /// Subscribe after the last event taken, after a backoff if the last attempt failed:
    /// true once subscribed, false when refused in a way worth trying again (counted in the
    /// stats; the caller reports them before the next attempt).
    async fn subscribe(&mut self) -> Result<bool, KinesisError> {
        // After a failure (of the last call or of the last subscription) wait, longer each time
        // until an event comes; and never call twice within a second.
        if let Some(delays) = self.in_use.as_mut().or(self.failures.as_mut()) {
            tokio::time::sleep(delays.next_delay()).await;
        }
        if let Some(last) = self.last_call {
            tokio::time::sleep_until(last + CALL_SPACING).await;
        }
        self.last_call = Some(tokio::time::Instant::now());
        let position = match &self.continuation {
            Some(continuation) => StartPosition::AfterSequenceNumber(continuation.clone()),
            None => self.start.clone(),
        };
        let call = self
            .kinesis
            .client
            .subscribe_to_shard()
            .consumer_arn(&self.fan_out.consumer_arn)
            .shard_id(&self.shard)
            .starting_position(starting_position(&position))
            .send()
            .await;
        let e = match call {
            Ok(reply) => {
                self.events = Some(Box::new(reply.event_stream));
                self.subscribed_at = tokio::time::Instant::now();
                self.stats.subscribed += 1;
                return Ok(true);
            }
            Err(e) => e,
        };
        let code = e.as_service_error().and_then(|s| s.code());
        let error = self.kinesis.error(&e, &self.stream);
        if e.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) {
            self.again(Again::InUse, Some(&error));
            return Ok(false);
        }
        if self.continuation.is_none()
            && self.start.expired(code, &self.shard, &self.stream, &error, &mut self.stats)
        {
            return Ok(false);
        }
        if !e.is_transient() {
            return Err(error);
        }
        self.stats.retries += 1;
        if is_throttling(code) {
            self.stats.throttles += 1;
        }
        self.in_use = None;
        let delays = self.failures.get_or_insert_with(|| Backoff::new(Service::Kinesis, RETRY));
        if delays.loud() {
            tracing::warn!(shard = %self.shard, "cannot subscribe to shard {} of {} ({error}); trying again", self.shard, self.stream);
        }
        Ok(false)
    }
}

fn starting_position(position: &StartPosition) -> StartingPosition {
    let builder = StartingPosition::builder();
    let builder = match position {
        StartPosition::Latest => builder.r#type(ShardIteratorType::Latest),
        StartPosition::TrimHorizon => builder.r#type(ShardIteratorType::TrimHorizon),
        StartPosition::AtTimestamp(t) => builder
            .r#type(ShardIteratorType::AtTimestamp)
            .timestamp(DateTime::from_millis(t.as_millisecond())),
        StartPosition::AfterSequenceNumber(sequence) => {
            builder.r#type(ShardIteratorType::AfterSequenceNumber).sequence_number(sequence)
        }
    };
    builder.build().expect("the type, its one required field, is set above")
}

#[cfg(test)]
mod tests {
    use aws_sdk_kinesis::types::{ChildShard, HashKeyRange, Record};

    use super::*;

    fn subscriber() -> ShardSubscriber {
        let fan_out = FanOut::new("arn:aws:kinesis:us-east-1:1:stream/s/consumer/c:1".into());
        ShardSubscriber::new(
            Kinesis::offline(),
            Stream("s".into()),
            "p".into(),
            StartPosition::Latest,
            fan_out,
        )
    }

    fn event(records: usize, continuation: &str, children: &[&str]) -> SubscribeToShardEvent {
        let record = Record::builder()
            .sequence_number("1")
            .data(aws_sdk_kinesis::primitives::Blob::new("x"))
            .partition_key("k")
            .build()
            .unwrap();
        let range = HashKeyRange::builder().starting_hash_key("0").ending_hash_key("99").build().unwrap();
        let children = children
            .iter()
            .map(|id| {
                ChildShard::builder()
                    .shard_id(*id)
                    .parent_shards("p")
                    .hash_key_range(range.clone())
                    .build()
                    .unwrap()
            })
            .collect::<Vec<_>>();
        SubscribeToShardEvent::builder()
            .set_records(Some(vec![record; records]))
            .continuation_sequence_number(continuation)
            .millis_behind_latest(0)
            .set_child_shards((!children.is_empty()).then_some(children))
            .build()
            .unwrap()
    }

    #[test]
    fn a_shard_ends_without_a_continuation_or_with_child_shards_and_no_records() {
        let now = Instant::now();
        let mut s = subscriber();
        assert!(!s.reply(event(3, "7", &["c"]), true, now).ended, "records still come with the children");
        assert_eq!(s.continuation.as_deref(), Some("7"), "resumed after the last event");
        let end = s.reply(event(0, "8", &["c", "d"]), true, now);
        assert!(end.ended && s.ended, "ChildShards and no records: the end (ferrokinesis)");
        let ids: Vec<&str> = end.children.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["c", "d"]);
        assert_eq!(end.children[0].parents, ["p"]);
        let mut s = subscriber();
        assert!(s.reply(event(2, "", &[]), true, now).ended, "no continuation: the end (AWS)");
        assert_eq!(s.continuation, None, "an empty continuation is never resumed from");
    }

    #[test]
    fn an_empty_event_proves_the_shard_caught_up_only_when_weir_waited_for_it_unhindered() {
        let now = Instant::now();
        let mut s = subscriber();
        let vouched = s.reply(event(0, "5", &[]), true, now);
        assert!(vouched.caught_up());
        assert_eq!(vouched.sent_at, now - PUSH_ALLOWANCE, "it stands for a read sent that much earlier");
        assert!(!s.reply(event(0, "5", &[]), false, now).caught_up(), "it may have waited in a buffer");
        assert!(!Reply::nothing().caught_up(), "a refused subscription proves nothing");
    }
}
