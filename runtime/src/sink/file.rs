//! A file or standard output as a sink: each output record's data on a line of its own (the
//! partition key is not written; the default operator's JSON repeats it).

use std::path::PathBuf;

use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;
use weir_contract::Output;

use super::{Outgoing, SinkError};

/// Lines to a writer.
pub struct FileSink {
    writer: BufWriter<Box<dyn AsyncWrite + Send + Unpin>>,
    name: String,
    lines: Vec<u8>,
}

impl FileSink {
    /// Lines to `writer`, named `name` in messages.
    pub fn new(writer: impl AsyncWrite + Send + Unpin + 'static, name: impl Into<String>) -> Self {
        Self {
            writer: BufWriter::with_capacity(1 << 16, Box::new(writer)),
            name: name.into(),
            lines: Vec::new(),
        }
    }

    /// Lines to a new (or truncated) file at `path`.
    pub async fn create(path: PathBuf) -> Result<Self, SinkError> {
        let file = tokio::fs::File::create(&path)
            .await
            .map_err(|source| SinkError::Write { what: path.display().to_string(), source })?;
        Ok(Self::new(file, path.display().to_string()))
    }

    /// Lines to standard output.
    pub fn stdout() -> Self {
        Self::new(tokio::io::stdout(), "stdout")
    }

    /// Write every output that arrives until the channel closes, flushing whenever no more
    /// output is waiting (so results show up promptly), before answering an acknowledgement,
    /// and at the end.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Outgoing>) -> Result<(), SinkError> {
        while let Some(outgoing) = rx.recv().await {
            self.write(&outgoing.output).await?;
            if rx.is_empty() || outgoing.ack.is_some() {
                self.flush().await?;
            }
            if let Some(ack) = outgoing.ack {
                let _ = ack.send(());
            }
        }
        self.flush().await
    }

    async fn write(&mut self, output: &Output) -> Result<(), SinkError> {
        // One write per call: the lines are laid out in a reused buffer first.
        self.lines.clear();
        for (_, data) in output.iter() {
            self.lines.extend_from_slice(data);
            self.lines.push(b'\n');
        }
        let result = self.writer.write_all(&self.lines).await;
        result.map_err(|e| self.error(e))
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        self.writer.flush().await.map_err(|e| self.error(e))
    }

    fn error(&self, source: std::io::Error) -> SinkError {
        SinkError::Write { what: self.name.clone(), source }
    }
}
