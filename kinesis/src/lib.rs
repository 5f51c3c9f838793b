//! weir's Kinesis side, shared by the runtime (`weir run --sink kinesis://`, `weir tail`) and
//! the producer (`weir-producer --sink kinesis://`):
//!
//! - [`aws`]: configuration from the SDK's default chain and standard endpoint variables, and
//!   SDK errors turned into one line that names the stream or endpoint and the fix;
//! - [`reader`]: the shard map (lineage, hash-key ranges) and one shard's paced GetRecords
//!   loop with backoff and iterator renewal;
//! - [`backoff`]: exponential backoff with full jitter, for both directions;
//! - [`sink`]: PutRecords within the service limits, per-key order kept through partial
//!   failures and retries, back-pressure instead of unbounded buffering.

pub mod aws;
pub mod backoff;
pub mod reader;
pub mod sink;

pub use aws::Stream;
pub use reader::{HashRange, ShardInfo, ShardReader, StartPosition};
pub use sink::{KinesisSink, Outgoing, SinkStats};

/// Kinesis refused, could not be reached, or was given something it cannot take; the message
/// names the stream and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KinesisError(pub String);
