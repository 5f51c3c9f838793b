//! Sources: where records come from. Each source runs as its own task and sends batches of
//! records (one shard's records per batch) down a bounded channel, so a slow operator holds the
//! source back instead of letting records pile up; closing the channel ends the input.

pub mod file;
pub mod generator;

use tokio::sync::mpsc;
use weir_operator::OwnedBatch;

pub use file::FileSource;
pub use generator::GeneratorSource;

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
}

/// The current time in ms since the Unix epoch.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// A configured source.
pub enum Source {
    /// Lines of a file or of standard input.
    File(FileSource),
    /// The built-in trade generator.
    Generator(GeneratorSource),
}

impl Source {
    /// Send batches to `tx` until the input ends (Ok) or fails; stops early, with Ok, when the
    /// receiver is gone.
    pub async fn run(self, tx: mpsc::Sender<OwnedBatch>) -> Result<(), SourceError> {
        match self {
            Source::File(s) => s.run(tx).await,
            Source::Generator(s) => s.run(tx).await,
        }
    }
}
