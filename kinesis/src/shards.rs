//! The shard map of a stream and where a shard is read from: ListShards with each shard's
//! parents and hash-key range ([`list_shards`], [`ShardInfo`], [`HashRange`]), the hash key a
//! partition key is routed by ([`hash_key`]), and [`StartPosition`].

use std::time::Duration;

use aws_sdk_kinesis::types::HashKeyRange;
use md5::{Digest, Md5};
use weir_aws::{Policy, Service};

use crate::KinesisError;
use crate::aws::{Kinesis, Stream};

/// ListShards is tried this many times, from 200 ms apart up to 5 s, before the failure is
/// reported (it runs at start, where a clear error beats waiting, and again on discovery, where
/// the caller tries later).
const LIST_RETRY: Policy = Policy::forever(Duration::from_millis(200), Duration::from_secs(5)).attempts(6);

/// A range of 128-bit hash keys, both ends included, as Kinesis assigns them to shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashRange {
    /// The lowest hash key.
    pub start: u128,
    /// The highest hash key.
    pub end: u128,
}

impl HashRange {
    /// Every hash key.
    pub const ALL: HashRange = HashRange { start: 0, end: u128::MAX };

    /// Whether `hash` falls in the range.
    pub fn contains(&self, hash: u128) -> bool {
        self.start <= hash && hash <= self.end
    }
}

/// The hash key Kinesis routes a partition key by: the MD5 of its UTF-8 bytes, as a 128-bit
/// big-endian number.
pub fn hash_key(partition_key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

/// What ListShards says about a shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardInfo {
    /// The shard id.
    pub id: String,
    /// The shards it was split or merged from (none for a shard the stream was created with).
    pub parents: Vec<String>,
    /// The hash keys it holds.
    pub hash_range: HashRange,
    /// Whether it is closed (split or merged away): it ends, and takes no more records.
    pub closed: bool,
}

/// Every shard the stream keeps (open and closed, within the retention period).
pub async fn list_shards(kinesis: &Kinesis, stream: &Stream) -> Result<Vec<ShardInfo>, KinesisError> {
    kinesis.check_region(stream)?;
    let mut shards = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let token = next.as_deref();
        let page = weir_aws::retry(
            Service::Kinesis,
            LIST_RETRY,
            format!("list the shards of {stream}"),
            move || async move {
                let request = match token {
                    Some(token) => kinesis.client.list_shards().next_token(token),
                    None => kinesis
                        .client
                        .list_shards()
                        .set_stream_name(stream.name())
                        .set_stream_arn(stream.arn()),
                };
                request.send().await.map_err(|e| kinesis.error(&e, stream))
            },
        )
        .await?;
        for shard in page.shards() {
            let Some(hash_range) = parse_range(shard.hash_key_range()) else {
                return Err(KinesisError::BadShard {
                    stream: stream.clone(),
                    endpoint: kinesis.endpoint.clone(),
                    shard: shard.shard_id().to_string(),
                });
            };
            let ending = shard.sequence_number_range().and_then(|r| r.ending_sequence_number());
            shards.push(ShardInfo {
                id: shard.shard_id().to_string(),
                parents: [shard.parent_shard_id(), shard.adjacent_parent_shard_id()]
                    .into_iter()
                    .flatten()
                    .map(str::to_string)
                    .collect(),
                hash_range,
                closed: ending.is_some(),
            });
        }
        next = page.next_token().map(str::to_string);
        if next.is_none() {
            return Ok(shards);
        }
    }
}

/// A hash key range as Kinesis describes it (decimal strings), if it is one.
pub(crate) fn parse_range(range: Option<&HashKeyRange>) -> Option<HashRange> {
    let range = range?;
    let (start, end) = (range.starting_hash_key().parse().ok()?, range.ending_hash_key().parse().ok()?);
    (start <= end).then_some(HashRange { start, end })
}

/// Where a shard is read from first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartPosition {
    /// Records written from now on.
    Latest,
    /// The oldest record the shard keeps.
    TrimHorizon,
    /// The first record that arrived at or after this time.
    AtTimestamp(jiff::Timestamp),
    /// The record after this sequence number.
    AfterSequenceNumber(String),
}

impl std::str::FromStr for StartPosition {
    type Err = String;

    /// `latest`, `trim-horizon` or `at-timestamp:<RFC 3339 time>`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "latest" => Ok(Self::Latest),
            "trim-horizon" => Ok(Self::TrimHorizon),
            _ => match s.strip_prefix("at-timestamp:") {
                Some(time) => time.parse::<jiff::Timestamp>().map(Self::AtTimestamp).map_err(|e| {
                    format!("{time:?} is not an RFC 3339 time such as 2026-11-25T10:00:00Z: {e}")
                }),
                None => Err(format!(
                    "unknown start position {s:?}: use latest, trim-horizon or at-timestamp:<RFC 3339 time>"
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_keys_are_the_md5_of_the_partition_key() {
        // RFC 1321's test vectors.
        assert_eq!(hash_key(""), 0xd41d8cd98f00b204e9800998ecf8427e);
        assert_eq!(hash_key("abc"), 0x900150983cd24fb0d6963f7d28e17f72);
    }

    #[test]
    fn start_positions_parse_and_bad_ones_say_what_is_accepted() {
        assert_eq!("latest".parse(), Ok(StartPosition::Latest));
        assert_eq!("trim-horizon".parse(), Ok(StartPosition::TrimHorizon));
        let at: StartPosition = "at-timestamp:2026-11-25T10:00:00Z".parse().unwrap();
        assert_eq!(at, StartPosition::AtTimestamp("2026-11-25T10:00:00Z".parse().unwrap()));
        let err = "at-timestamp:yesterday".parse::<StartPosition>().unwrap_err();
        assert!(err.contains("RFC 3339"), "{err}");
        let err = "oldest".parse::<StartPosition>().unwrap_err();
        assert!(err.contains("trim-horizon"), "{err}");
    }

    #[test]
    fn ranges_hold_both_ends() {
        let r = HashRange { start: 10, end: 20 };
        assert!(r.contains(10) && r.contains(20) && !r.contains(9) && !r.contains(21));
        assert!(HashRange::ALL.contains(u128::MAX));
    }
}
