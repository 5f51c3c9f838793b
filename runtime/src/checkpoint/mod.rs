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
//! - [`store`]: what a store is to the pipeline ([`CheckpointStore`]), and one process's
//!   store ([`PointerStore`]: a directory or `s3://BUCKET/PREFIX`, objects written whole, the
//!   newest named by a small [`pointer`] that a stale process cannot overwrite); a lease group
//!   worker's store is `crate::lease::checkpoints`;
//! - [`resume`]: where a reader resumes each shard of a checkpoint, and whether an operator can
//!   take its state.

pub mod pointer;
pub mod resume;
pub mod store;

use crate::artifact::Digest;
use crate::operator::LoadedOperator;
pub use pointer::Pointer;
pub use resume::{check_state, resume_positions};
pub use store::{CheckpointStore, PointerStore};
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
        sequence: loaded.artifact().sequence,
    }
}

/// A checkpoint's operator in words: `sliding-window-max 0.2.0 (sha256 0123456789ab)`.
pub fn describe(operator: &OperatorRef) -> String {
    let digest = operator.digest.parse::<Digest>().map_or_else(|_| operator.digest.clone(), |d| d.short());
    format!("{} {} (sha256 {digest})", operator.name, operator.version)
}

/// A checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// An object could not be read or written.
    #[error(transparent)]
    Storage(#[from] crate::objects::ObjectError),
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
    /// The checkpoint was written but could not be recorded where a restart finds it (a
    /// lease group's lease table refused or could not be reached).
    #[error("checkpoint {id} was written but not recorded: {source}")]
    Record {
        /// The checkpoint.
        id: u64,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
        /// Whether trying again may work.
        transient: bool,
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

impl weir_aws::Transient for CheckpointError {
    /// A throttled or unreachable S3 or lease table. Not a refusal, a local I/O error, a
    /// damaged object, or another writer having taken over.
    fn is_transient(&self) -> bool {
        match self {
            Self::Storage(e) => e.is_transient(),
            Self::Record { transient, .. } => *transient,
            _ => false,
        }
    }
}
