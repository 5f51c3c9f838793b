//! Checkpoints: what lets `weir run` stop (or crash) and go on where it was, state and all.
//!
//! A [`Checkpoint`] is a consistent cut taken between two pipeline steps, when no operator
//! instance is in a call: for every shard the sequence number up to which its records are in
//! the state ([`ShardProgress`]), the state of every key after exactly those records, the
//! operator that made it (digest, contract), the parallelism, and the shard lineage. The
//! pipeline takes it, then waits until the sink has acknowledged every output produced before
//! it, and only then hands it to the [`store`], so a checkpoint never claims records whose
//! results could still be lost.
//!
//! - [`codec`]: the bytes of a checkpoint (readable JSON metadata, the keyed state, a checksum);
//! - [`store`]: where checkpoints live (a directory or `s3://BUCKET/PREFIX`), written
//!   atomically, the newest named by a small pointer that a stale process cannot overwrite.

pub mod codec;
pub mod store;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use weir_contract::KeyedStates;

use crate::artifact::Digest;
pub use store::{CheckpointStore, Pointer};

/// Where one shard stood when the checkpoint was taken.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardProgress {
    /// The shards it continues (after a split or merge).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<String>,
    /// The sequence number of its last record in the state; None when none was read yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// When it started being read (ms since the epoch): a shard with no record yet is read
    /// again from this time, so a `latest` start skips nothing written while weir was down.
    pub started_at_ms: i64,
    /// It was read to its end: its records are all in the state, its children may start.
    #[serde(default)]
    pub finished: bool,
    /// The latest event time the operator reported for its records (its watermark).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time_ms: Option<i64>,
}

/// The operator a checkpoint's state belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorRef {
    /// The component's sha256.
    pub digest: Digest,
    /// Its name and version, as it describes itself.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The contract it was built for.
    pub contract: String,
    /// What its state is keyed by (`the JSON field "TICKER"`): state of another grouping key
    /// cannot be restored.
    pub grouping: String,
}

impl OperatorRef {
    /// The operator `loaded` as a checkpoint names it.
    pub fn of(loaded: &crate::operator::LoadedOperator) -> Self {
        Self {
            digest: loaded.artifact().digest,
            name: loaded.name().to_string(),
            version: loaded.version().to_string(),
            contract: weir_contract::CONTRACT.to_string(),
            grouping: loaded.grouping().to_string(),
        }
    }
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

/// A checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A file or directory could not be read or written.
    #[error("cannot {action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// S3 refused or could not be reached.
    #[error(transparent)]
    S3(#[from] crate::s3::S3Error),
    /// Another process holds the directory.
    #[error(
        "{dir} is in use by another weir (it holds {dir}/LOCK): two processes must not share a checkpoint location; stop the other one or give another --checkpoint"
    )]
    Locked {
        /// The directory.
        dir: String,
    },
    /// Someone else moved the pointer since this process last wrote or read it.
    #[error(
        "{location}/LATEST was replaced by another weir since this one wrote checkpoint {id}: this process stops rather than overwrite a newer checkpoint (two processes must not share a checkpoint location)"
    )]
    Fenced {
        /// The location.
        location: String,
        /// The last checkpoint this process wrote or read.
        id: u64,
    },
    /// The task writing checkpoints panicked.
    #[error("internal error: the checkpoint writer failed: {0}")]
    Panicked(String),
    /// What was read is not a checkpoint weir can use.
    #[error("{object} is not a usable weir checkpoint: {reason}")]
    Corrupt {
        /// The object or file.
        object: String,
        /// Why.
        reason: String,
    },
}
