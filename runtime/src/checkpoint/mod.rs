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
//! - the format (the types and [`codec`]: readable JSON metadata, the keyed state, a checksum)
//!   is the `weir-checkpoint` crate, re-exported here;
//! - [`store`]: where checkpoints live (a directory or `s3://BUCKET/PREFIX`), written
//!   atomically, the newest named by a small pointer ([`pointer`]) that a stale process cannot
//!   overwrite;
//! - [`leased`]: a lease group's per-worker checkpoints, recorded in the leases;
//! - [`objects`]: the bytes in a directory or under an S3 prefix, for the leased store.

pub mod leased;
pub mod objects;
pub mod pointer;
pub mod store;

use std::collections::BTreeMap;

use weir_kinesis::{Resume, StartPosition};

use crate::artifact::Digest;
use crate::operator::LoadedOperator;
pub use pointer::Pointer;
pub use store::CheckpointStore;
pub use weir_checkpoint::{Checkpoint, Meta, OperatorRef, ShardProgress, codec};

/// Checkpoints kept by a store before older ones are deleted.
pub const KEEP: u64 = 3;

/// The operator `loaded` as a checkpoint names it.
pub fn operator_ref(loaded: &LoadedOperator) -> OperatorRef {
    OperatorRef {
        digest: loaded.artifact().digest.to_string(),
        name: loaded.name().to_string(),
        version: loaded.version().to_string(),
        contract: weir_contract::CONTRACT.to_string(),
        grouping: loaded.grouping().to_string(),
    }
}

/// Where a Kinesis reader resumes each shard of a checkpoint: after its last record, or, with
/// none read yet, from where it started being read (its beginning, or a time), so that nothing
/// written meanwhile is skipped.
pub fn resume_positions(shards: &BTreeMap<String, ShardProgress>) -> BTreeMap<String, Resume> {
    shards
        .iter()
        .map(|(id, progress)| {
            let resume = match (&progress.after, progress.finished) {
                (_, true) => Resume::Finished,
                (Some(after), false) => Resume::From(StartPosition::AfterSequenceNumber(after.clone())),
                (None, false) if progress.started_at_ms <= 0 => Resume::From(StartPosition::TrimHorizon),
                (None, false) => Resume::From(
                    jiff::Timestamp::from_millisecond(progress.started_at_ms)
                        .map_or(StartPosition::TrimHorizon, StartPosition::AtTimestamp),
                ),
            };
            (id.clone(), resume)
        })
        .collect()
}

/// A checkpoint's operator in words: `sliding-window-max 0.2.0 (sha256 0123456789ab)`.
pub fn describe(operator: &OperatorRef) -> String {
    let digest = operator.digest.parse::<Digest>().map_or_else(|_| operator.digest.clone(), |d| d.short());
    format!("{} {} (sha256 {digest})", operator.name, operator.version)
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
    /// This worker no longer holds a lease the checkpoint covers.
    #[error(
        "the lease of shard {shard} in {table} was taken by another worker: this worker's checkpoint is not recorded for it, and it stops reading it"
    )]
    LeaseLost {
        /// The shard.
        shard: String,
        /// The lease table.
        table: String,
    },
    /// The lease table refused or could not be reached.
    #[error(transparent)]
    Lease(#[from] crate::lease::LeaseError),
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
