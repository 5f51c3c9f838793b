//! Sinks: where results go. The result sink runs as its own task fed by a bounded channel (so a
//! slow sink holds the operator back); dead letters are written where they arise (see
//! [`dead_letter`]).

pub mod dead_letter;
pub mod file;

pub use dead_letter::DeadLetterWriter;
pub use file::FileSink;
pub use weir_kinesis::{KinesisSink, Outgoing};

/// A sink failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Writing failed.
    #[error("cannot write to {what}")]
    Write {
        /// Where.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// Kinesis refused or could not be reached; the message names the stream and the fix.
    #[error(transparent)]
    Kinesis(#[from] weir_kinesis::KinesisError),
}

/// A configured result sink.
pub enum Sink {
    /// A file or standard output.
    File(FileSink),
    /// A Kinesis stream.
    Kinesis(KinesisSink),
}

impl Sink {
    /// Write every output that arrives until the channel closes.
    pub async fn run(self, rx: tokio::sync::mpsc::Receiver<Outgoing>) -> Result<(), SinkError> {
        match self {
            Sink::File(s) => s.run(rx).await,
            Sink::Kinesis(s) => Ok(s.run(rx).await?),
        }
    }
}
