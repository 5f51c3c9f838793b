//! weir's checkpoint format. A [`Checkpoint`] is a consistent cut of a running `weir run`: for
//! every shard the sequence number up to which its records are in the state
//! ([`ShardProgress`]), the state of every key after exactly those records, the operator that
//! made it (digest, contract, grouping key), the parallelism, and the shard lineage.
//! [`codec`] turns it into bytes and back, refusing anything damaged.
//!
//! The host takes, stores and restores checkpoints (`weir`'s `checkpoint` and `pipeline`
//! modules); this crate is only the format, small enough for tools and fuzz targets.

pub mod codec;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use weir_contract::KeyedStates;

/// Where one shard stood when the checkpoint was taken.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardProgress {
    /// The shards it continues (after a split or merge).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<String>,
    /// The sequence number of its last record in the state; None when none was read yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Where it started being read (ms since the epoch; 0: its beginning): a shard with no
    /// record yet is read again from there, so nothing written meanwhile is skipped (a
    /// `latest` start records the time it started).
    pub started_at_ms: i64,
    /// It was read to its end: its records are all in the state, its children may start.
    #[serde(default)]
    pub finished: bool,
    /// Its event-time clock: no record of it after `after` is older (the latest event time the
    /// operator reported for its records, or more once an empty read proved it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time_ms: Option<i64>,
}

/// The operator a checkpoint's state belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorRef {
    /// The component's sha256, in hex.
    pub digest: String,
    /// Its name and version, as it describes itself.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The contract it was built for.
    pub contract: String,
    /// What its state is keyed by (`the JSON field "TICKER"`): state of another grouping key
    /// cannot be restored.
    pub grouping: String,
    /// The sequence number of its deployment entry, when it came from a deployment in S3: a
    /// restart trusting signed versions refuses an entry older than this (a replay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
}

/// Everything in a checkpoint but the state: small, JSON in the checkpoint's bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// Checkpoints of a location are numbered 1, 2, ...
    pub id: u64,
    /// When it was taken.
    pub taken_at: jiff::Timestamp,
    /// What was read (`kinesis://STREAM`): a checkpoint of another source is refused.
    pub source: String,
    /// The operator whose state it holds.
    pub operator: OperatorRef,
    /// The instances the state was taken from (a restore may use another number).
    pub parallelism: u32,
    /// Every shard read so far, by id.
    pub shards: BTreeMap<String, ShardProgress>,
    /// The watermark passed to the operator last.
    pub watermark_ms: i64,
    /// Output records acknowledged by the sink up to the cut, over every run so far.
    pub records_out: u64,
}

/// A checkpoint: its metadata and the state of every key (entries of every instance, the
/// instance-wide ones included once per instance).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Positions, lineage, operator.
    pub meta: Meta,
    /// The operator's state.
    pub state: KeyedStates,
}

/// A small checkpoint with every kind of field, for tests.
#[cfg(any(test, feature = "sample"))]
pub fn sample() -> Checkpoint {
    let mut state = KeyedStates::default();
    state.push("", b"instance");
    state.push("AMZN", &[1, 2, 3]);
    state.push("GOOG", &[]);
    let shards = BTreeMap::from([
        (
            "shardId-0".to_string(),
            ShardProgress { after: Some("4960".into()), finished: true, ..Default::default() },
        ),
        (
            "shardId-2".to_string(),
            ShardProgress {
                parents: vec!["shardId-0".into()],
                started_at_ms: 7,
                event_time_ms: Some(9),
                ..Default::default()
            },
        ),
    ]);
    Checkpoint {
        meta: Meta {
            id: 3,
            taken_at: "2026-11-26T10:00:00Z".parse().unwrap(),
            source: "kinesis://trades".into(),
            operator: OperatorRef {
                digest: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
                name: "sliding-window-max".into(),
                version: "0.2.0".into(),
                contract: "weir:operator@0.2.0".into(),
                grouping: "the JSON field \"TICKER\"".into(),
                sequence: Some(4),
            },
            parallelism: 2,
            shards,
            watermark_ms: 1_000,
            records_out: 42,
        },
        state,
    }
}
