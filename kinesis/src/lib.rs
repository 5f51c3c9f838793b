//! weir's Kinesis client side, shared by the runtime (`weir run`, `weir tail`) and the
//! producer (`weir-producer --sink kinesis://`). It knows nothing of operators: the runtime's
//! `source/kinesis.rs` and `sink/kinesis.rs` are thin adapters over it.
//!
//! - [`aws`]: the [`Kinesis`] client on weir's AWS layer (`weir-aws`: configuration, endpoints,
//!   the one retry mechanism), and SDK errors turned into [`KinesisError`]s;
//! - [`shards`]: the shard map (hash-key ranges, parents) and start positions;
//! - [`reader`]: one shard's paced GetRecords loop with retries and iterator renewal;
//! - [`consumer`]: enhanced fan-out consumers, registered or found by name, deregistered;
//! - [`subscription`]: one shard read through SubscribeToShard, renewed, resubscribed after
//!   silence or a dropped connection, giving the same replies as the reader;
//! - [`lineage`]: a whole stream read shard by shard in lineage order, parents before children;
//! - [`writer`]: PutRecords within the service limits, per-key order kept through partial
//!   failures and retries, back-pressure instead of unbounded buffering;
//! - [`error`]: what can go wrong, by variant.

pub mod aws;
pub mod consumer;
pub mod error;
pub mod lineage;
pub mod reader;
pub mod shards;
pub mod subscription;
pub mod writer;

pub use aws::{Kinesis, Stream};
pub use consumer::Consumer;
pub use error::KinesisError;
pub use lineage::{ReadOptions, Resume, ShardEvent, ShardFeed, StreamReader};
pub use reader::{ReaderStats, ShardReader};
pub use shards::{HashRange, ShardInfo, StartPosition};
pub use subscription::{FanOut, ShardSubscriber};
pub use writer::{KinesisWriter, Outbound, WriterStats};
