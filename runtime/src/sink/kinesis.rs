//! A Kinesis stream as the result sink: a thin adapter that hands operator outputs to
//! weir-kinesis's [`KinesisWriter`] (PutRecords within the limits, per-key order, retries,
//! back-pressure).

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use weir_kinesis::{Kinesis, KinesisWriter, Outbound, Stream, WriterStats};

use super::{Outgoing, SinkError};

/// Operator outputs to a Kinesis stream, partition key = the output record's key.
pub struct KinesisSink(KinesisWriter);

impl KinesisSink {
    /// A sink for `stream`, checked to exist before anything runs.
    pub async fn connect(kinesis: Kinesis, stream: Stream) -> Result<Self, SinkError> {
        Ok(Self(KinesisWriter::connect(kinesis, stream).await?))
    }

    /// The writer's counters.
    pub fn stats(&self) -> Arc<WriterStats> {
        self.0.stats()
    }

    /// The same sink, counting into `stats` (an earlier sink's: a lease group's worker makes
    /// one per term).
    pub fn counting_into(self, stats: Arc<WriterStats>) -> Self {
        Self(self.0.counting_into(stats))
    }

    /// Write every output that arrives until the channel closes and everything is written.
    pub async fn run(self, rx: mpsc::Receiver<Outgoing>) -> Result<(), SinkError> {
        Ok(self.0.run(rx).await?)
    }
}

impl Outbound for Outgoing {
    fn records(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.output.iter()
    }

    fn read_at(&self) -> Option<Instant> {
        self.read_at
    }

    fn take_ack(&mut self) -> Option<tokio::sync::oneshot::Sender<()>> {
        self.ack.take()
    }
}
