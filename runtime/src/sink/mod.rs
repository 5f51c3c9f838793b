//! Sinks: where results go. The result sink runs as its own task fed by a bounded channel of
//! [`Outgoing`] (so a slow sink holds the operator back); dead letters go to their own
//! destination (see [`dead_letter`]).

pub mod dead_letter;
pub mod deadline;
pub mod file;
pub mod kinesis;

use std::time::Instant;

use tokio::sync::oneshot;
use weir_contract::Output;

pub use dead_letter::DeadLetterWriter;
pub use deadline::WriteDeadline;
pub use file::FileSink;
pub use kinesis::KinesisSink;

/// Records for the sink: an operator's output, and when the input that produced it was read
/// (so the sink can measure the latency the runtime adds), if it came from input; or an
/// acknowledgement to answer once everything before it is written (a checkpoint waits for it).
#[derive(Debug, Default)]
pub struct Outgoing {
    /// The records.
    pub output: Output,
    /// When the source received the batch whose processing emitted them.
    pub read_at: Option<Instant>,
    /// Answered once these records and every one before them are written.
    pub ack: Option<oneshot::Sender<()>>,
}

impl Outgoing {
    /// No records: only an acknowledgement, answered once everything before it is written.
    pub fn ack() -> (Self, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        (Self { ack: Some(tx), ..Self::default() }, rx)
    }
}

impl From<Output> for Outgoing {
    fn from(output: Output) -> Self {
        Self { output, read_at: None, ack: None }
    }
}

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
    /// S3 refused or could not be reached (dead letters to `s3://`).
    #[error(transparent)]
    Storage(#[from] crate::objects::ObjectError),
    /// This worker of a lease group could not renew its leases in time: another may hold them
    /// now, so it writes nothing more until it has them again.
    #[error(
        "this worker could not renew its leases in time (its --failover-time ran out): results are held back until it holds its leases again"
    )]
    DeadlinePassed,
}

/// A configured result sink.
pub enum Sink {
    /// A file or standard output.
    File(FileSink),
    /// A Kinesis stream.
    Kinesis(KinesisSink),
}

impl Sink {
    /// Why this sink cannot take a record with `key` and `data`, if it cannot (a Kinesis
    /// record's limits): the pipeline sends such results to the dead-letter destination
    /// instead of letting one result stop the run.
    pub fn refusal(&self) -> fn(&str, &[u8]) -> Option<String> {
        match self {
            Sink::File(_) => |_, _| None,
            Sink::Kinesis(_) => {
                |key, data| weir_kinesis::writer::fits(key, data).err().map(|e| e.to_string())
            }
        }
    }

    /// Write every output that arrives until the channel closes.
    pub async fn run(self, rx: tokio::sync::mpsc::Receiver<Outgoing>) -> Result<(), SinkError> {
        self.run_until(rx, None).await
    }

    /// [`Sink::run`], refusing every output once `deadline` has passed (a lease group's worker
    /// that could not renew): checked as each output is taken from the channel, before it is
    /// written.
    pub async fn run_until(
        self,
        mut rx: tokio::sync::mpsc::Receiver<Outgoing>,
        deadline: Option<WriteDeadline>,
    ) -> Result<(), SinkError> {
        if let Some(deadline) = deadline {
            let (tx, inner) = tokio::sync::mpsc::channel(1);
            let gate = async move {
                while let Some(outgoing) = rx.recv().await {
                    if !deadline.is_open() {
                        return Err(SinkError::DeadlinePassed);
                    }
                    if tx.send(outgoing).await.is_err() {
                        break;
                    }
                }
                Ok(())
            };
            let (gated, written) = tokio::join!(gate, Box::pin(self.run_until(inner, None)));
            return gated.and(written);
        }
        match self {
            Sink::File(s) => s.run(rx).await,
            Sink::Kinesis(s) => s.run(rx).await,
        }
    }
}
