//! Sinks: where results go. The result sink runs as its own task fed by a bounded channel (so a
//! slow sink holds the operator back); dead letters are written where they arise (see
//! [`dead_letter`]).

pub mod dead_letter;
pub mod file;

pub use dead_letter::DeadLetterWriter;
pub use file::FileSink;

/// A sink failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Writing failed.
    #[error("cannot write to {what}: {source}")]
    Write {
        /// Where.
        what: String,
        /// Why.
        source: std::io::Error,
    },
}
