//! Scale-out: several `weir run --lease-table` workers share a stream through one DynamoDB
//! table, with no coordinator of their own. Everything about lease groups is here; the binary
//! only parses and wires.
//!
//! - [`table`]: the DynamoDB table (created on first use, its errors explained), with its
//!   [`group`] row (workers, heartbeats, the change count) and lease [`rows`] (one per shard),
//!   every write conditional;
//! - [`store`]: what the lease loop needs of a table, as a trait ([`LeaseStore`]), with an
//!   in-memory table of the same conditions for tests ([`MemoryLeases`]);
//! - [`balance`]: which leases a worker takes or gives up, from one consistent read of the
//!   table (pure: tested on its own and by the simulation);
//! - [`coordinator`]: the loop each worker runs beside its pipeline: renew (which moves the
//!   sink's write deadline), notice dead workers, take and shed leases, and tell the pipeline
//!   when its set of shards changes;
//! - [`worker`]: a worker's life: join, run the pipeline in terms over the shards it holds,
//!   leave;
//! - [`checkpoints`]: a worker's checkpoints, recorded in its leases, and a term's restore
//!   from them.
//!
//! A lease moves a shard with its checkpoint: the row names the checkpoint object that holds
//! the shard's position and the state of its keys, and the new owner goes on from there.
//! "Fenced" means one thing: another writer took over (here, the lease's counter moved, and the
//! old owner's conditional write is refused).

pub mod balance;
pub mod checkpoints;
pub mod coordinator;
pub mod group;
pub mod rows;
pub mod store;
pub mod table;
pub mod worker;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

pub use coordinator::{Coordinator, CoordinatorOptions};
pub use store::{LeaseStore, MemoryLeases};
pub use table::LeaseTable;
use weir_kinesis::HashRange;
pub use worker::Worker;

/// One shard's row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The shard.
    pub shard: String,
    /// The worker holding it (None: free).
    pub owner: Option<String>,
    /// Bumped on every take: the fencing token of the owner's writes.
    pub counter: u64,
    /// Read to its end: never leased again; its children may be.
    pub finished: bool,
    /// The shards it continues.
    pub parents: Vec<String>,
    /// The hash keys it holds (the keys whose state it carries).
    pub hash_range: HashRange,
    /// The checkpoint object holding its position and state, relative to the checkpoint
    /// location (None: never checkpointed).
    pub checkpoint: Option<String>,
    /// The sequence number it was processed up to at that checkpoint.
    pub position: Option<String>,
    /// When that checkpoint was taken.
    pub checkpoint_at: Option<String>,
    /// The latest event time read from it at that checkpoint.
    pub event_time_ms: Option<i64>,
}

/// The group row: which job the table serves, and its workers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Group {
    /// What the workers read (`kinesis://STREAM`).
    pub source: String,
    /// Where their checkpoints are.
    pub checkpoints: String,
    /// Bumped whenever a lease is freed or a worker joins or leaves.
    pub changes: u64,
    /// The workers, by id.
    pub workers: BTreeMap<String, Member>,
}

/// A worker in the group row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Member {
    /// Bumped on every renewal.
    pub heartbeat: u64,
    /// When it last renewed, by its clock (for people: expiry is judged by each observer's
    /// own clock, from heartbeats that stop changing).
    pub renewed_at: String,
}

/// What is happening to a lease, as `weir leases` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseState {
    /// Held by a worker in the group.
    Reading,
    /// Held by a worker no longer in the group (it will be taken over).
    Expired,
    /// Free, and its parents are finished: a worker may take it.
    Free,
    /// Free, but a parent is still being read.
    Waiting,
    /// Read to its end: never leased again.
    Finished,
}

impl LeaseState {
    /// The state of `lease` in `group` (`by_shard`: every lease, for its parents).
    pub fn of(lease: &Lease, group: &Group, by_shard: &BTreeMap<&str, &Lease>) -> Self {
        match (&lease.owner, lease.finished) {
            (_, true) => Self::Finished,
            (Some(owner), _) if group.workers.contains_key(owner) => Self::Reading,
            (Some(_), _) => Self::Expired,
            (None, _) if balance::leasable(lease, by_shard) => Self::Free,
            (None, _) => Self::Waiting,
        }
    }

    /// Its name, as `weir leases` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reading => "reading",
            Self::Expired => "expired",
            Self::Free => "free",
            Self::Waiting => "waiting",
            Self::Finished => "finished",
        }
    }
}

/// The lease table refused or could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// A permission is missing.
    #[error(
        "access to the lease table {table} was denied ({detail}): the workers need {action} on it (and dynamodb:CreateTable for the first start, or create the table with a string hash key `id`)"
    )]
    Denied {
        /// The table.
        table: String,
        /// The permission, as IAM names it.
        action: &'static str,
        /// What DynamoDB said.
        detail: String,
    },
    /// The table does not exist (yet).
    #[error(
        "there is no lease table {table} at {endpoint}: the first `weir run --lease-table {table}` creates it (check the name and the region)"
    )]
    NoTable {
        /// The table.
        table: String,
        /// Where requests went.
        endpoint: String,
    },
    /// No credentials in the default chain.
    #[error(
        "no AWS credentials for the lease table {table}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with a role ({detail})"
    )]
    NoCredentials {
        /// The table.
        table: String,
        /// What the credential chain said.
        detail: String,
    },
    /// DynamoDB could not be reached.
    #[error(
        "cannot reach DynamoDB at {endpoint} for the lease table {table}: {detail}; check the endpoint (AWS_ENDPOINT_URL_DYNAMODB) and the network"
    )]
    Unreachable {
        /// The table.
        table: String,
        /// Where requests went.
        endpoint: String,
        /// The error and its causes.
        detail: String,
    },
    /// DynamoDB answered with an error.
    #[error("DynamoDB refused {action} on the lease table {table}: {code} {message}")]
    Refused {
        /// The table.
        table: String,
        /// The call.
        action: &'static str,
        /// The error code.
        code: String,
        /// DynamoDB's message.
        message: String,
        /// Whether trying again may work (throttling, a busy service).
        transient: bool,
    },
    /// The call failed in another way.
    #[error("{action} on the lease table {table} failed: {detail}")]
    Failed {
        /// The table.
        table: String,
        /// The call.
        action: &'static str,
        /// What went wrong.
        detail: String,
    },
    /// The table serves another job.
    #[error(
        "the lease table {table} belongs to the job reading {stream} with checkpoints at {checkpoints}, not {wanted_stream} with checkpoints at {wanted_checkpoints}: give each job its own --lease-table"
    )]
    OtherJob {
        /// The table.
        table: String,
        /// Its source.
        stream: String,
        /// Its checkpoint location.
        checkpoints: String,
        /// This worker's source.
        wanted_stream: String,
        /// This worker's checkpoint location.
        wanted_checkpoints: String,
    },
    /// A row is not what weir writes.
    #[error("row {row} of the lease table {table} is not a weir lease: {reason}")]
    Corrupt {
        /// The table.
        table: String,
        /// The row's id.
        row: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl weir_aws::Transient for LeaseError {
    /// An unreachable, throttled or failing table; not a refusal or a row weir cannot read.
    fn is_transient(&self) -> bool {
        match self {
            LeaseError::Unreachable { .. } | LeaseError::Failed { .. } => true,
            LeaseError::Refused { transient, .. } => *transient,
            _ => false,
        }
    }
}
