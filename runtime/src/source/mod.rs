//! Sources: where records come from. Each source runs as its own task and sends
//! [`SourceEvent`]s down a bounded channel: a shard starts, batches of its records (one shard's
//! records per batch, already routed to the operator instances that own their keys:
//! [`routed`]), the shard ends. A slow operator holds the source back instead of letting
//! records pile up; closing the channel ends the input. A record the source cannot pass on (a
//! line too long to be a record) is sent as a dead letter, so nothing is dropped silently.

pub mod channel;
pub mod file;
pub mod generator;
pub mod input;
pub mod kinesis;
pub mod lines;
pub mod routed;

use std::time::Instant;

use tokio::sync::mpsc;
use weir_contract::DeadLetter;
use weir_kinesis::HashRange;

pub use channel::ChannelSource;
pub use file::FileSource;
pub use generator::GeneratorSource;
pub use kinesis::KinesisSource;
pub use routed::{Batcher, Routed};

use crate::routing::Router;

/// Where a shard's state comes from: the shards it continues after a split or merge, and the
/// hash keys it holds (the keys of their state it takes over).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lineage {
    /// The shards it continues.
    pub parents: Vec<String>,
    /// The hash keys it holds.
    pub hash_range: HashRange,
    /// Where it is read from until a record of it is processed, in ms since the epoch (0: its
    /// beginning; None: now), which is where a checkpoint taken before then resumes it.
    pub from_ms: Option<i64>,
}

/// What a source tells the pipeline, in order per shard: `Started`, `Batch`es and `CaughtUp`s,
/// maybe `Ended` or `Idle`.
/// A shard's `Started` comes after the `Ended` of each parent it names.
#[derive(Debug)]
pub enum SourceEvent {
    /// A shard starts: it gets an operator instance, with the state its ended parents held for
    /// its hash range (a file, standard input or the generator has no lineage).
    Started {
        /// The shard.
        shard: String,
        /// Its parents and hash range, for a Kinesis shard.
        lineage: Option<Lineage>,
    },
    /// Records of a started shard (each sub-batch's `shard_id` names it).
    Batch {
        /// The records, one sub-batch per instance.
        batch: Routed,
        /// When they were received.
        read_at: Instant,
        /// Where the shard stands after them (a Kinesis sequence number), for checkpoints.
        position: Option<String>,
    },
    /// A read of a started shard sent at `sent_at` came back empty with the shard caught up
    /// (Kinesis: no records, MillisBehindLatest 0): it had nothing more then. This, not a
    /// clock, is what lets a quiet shard stop holding the watermark back.
    CaughtUp {
        /// The shard.
        shard: String,
        /// When the read was sent.
        sent_at: Instant,
    },
    /// The shard will not be read again in this run (`--until-idle`: caught up that long); it
    /// is not finished, so a later run goes on with it.
    Idle {
        /// The shard.
        shard: String,
    },
    /// The shard was read to its end; its state waits for its children.
    Ended {
        /// The shard.
        shard: String,
    },
    /// Input the source could not make a record of, for the dead-letter destination.
    Rejected(DeadLetter),
}

impl SourceEvent {
    /// A shard of a source without lineage: a file, standard input, the generator.
    pub fn root(shard: &str) -> Self {
        Self::Started { shard: shard.to_string(), lineage: None }
    }

    /// Records read just now (a whole batch is routed by the source it is sent through).
    pub fn batch(batch: impl Into<Routed>) -> Self {
        Self::Batch { batch: batch.into(), read_at: Instant::now(), position: None }
    }
}

/// A source failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Reading failed.
    #[error("cannot read {what}")]
    Read {
        /// What was being read.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// The generator could not start.
    #[error(transparent)]
    Generator(#[from] weir_producer::GeneratorError),
    /// Kinesis refused or could not be reached; the message names the stream and the fix.
    #[error(transparent)]
    Kinesis(#[from] weir_kinesis::KinesisError),
}

/// A configured source.
pub enum Source {
    /// Lines of a file or of standard input.
    File(FileSource),
    /// The built-in trade generator.
    Generator(GeneratorSource),
    /// A Kinesis stream, every shard.
    Kinesis(Box<KinesisSource>),
    /// Events another task sends.
    Channel(ChannelSource),
}

impl Source {
    /// Whether every record comes from one shard (a file, standard input, the generator): no
    /// grouping key can then be spread over shards.
    pub fn single_shard(&self) -> bool {
        matches!(self, Source::File(_) | Source::Generator(_))
    }

    /// Send batches to `tx`, routed by `router`, until the input ends (Ok) or fails; stops
    /// early, with Ok, when the receiver is gone.
    pub async fn run(self, tx: mpsc::Sender<SourceEvent>, router: Router) -> Result<(), SourceError> {
        match self {
            Source::File(s) => s.run(tx, &router).await,
            Source::Generator(s) => s.run(tx, &router).await,
            Source::Kinesis(s) => s.run(tx, &router).await,
            Source::Channel(s) => s.run(tx, &router).await,
        }
    }
}
