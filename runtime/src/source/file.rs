//! A file or standard input as a source: one record per line, in order, as one shard. The
//! input ends at end of file.
//!
//! Lines carry no partition key (the operator keys records by their content); empty lines are
//! not records and are skipped. A batch is sent when it is full, and also whenever a read
//! returns less than a buffer's worth, so that lines typed or piped in slowly are processed at
//! once instead of waiting for a full batch.

use std::path::PathBuf;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use weir_operator::OwnedBatch;

use super::{SourceError, SourceEvent, now_ms};

const READ_BUFFER_BYTES: usize = 256 << 10;

/// Lines of a reader.
pub struct FileSource {
    reader: Box<dyn AsyncRead + Send + Unpin>,
    name: String,
    batch_size: usize,
}

impl FileSource {
    /// Lines of `reader`, reported as shard `name`, in batches of at most `batch_size`.
    pub fn new(
        reader: impl AsyncRead + Send + Unpin + 'static,
        name: impl Into<String>,
        batch_size: usize,
    ) -> Self {
        Self { reader: Box::new(reader), name: name.into(), batch_size: batch_size.max(1) }
    }

    /// Lines of the file at `path`.
    pub async fn open(path: PathBuf, batch_size: usize) -> Result<Self, SourceError> {
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|source| SourceError::Read { what: path.display().to_string(), source })?;
        Ok(Self::new(file, path.display().to_string(), batch_size))
    }

    /// Lines of standard input.
    pub fn stdin(batch_size: usize) -> Self {
        Self::new(tokio::io::stdin(), "stdin", batch_size)
    }

    pub(super) async fn run(mut self, tx: mpsc::Sender<SourceEvent>) -> Result<(), SourceError> {
        if tx.send(SourceEvent::root(&self.name)).await.is_err() {
            return Ok(());
        }
        let mut buf = vec![0u8; READ_BUFFER_BYTES];
        // Bytes of a line not yet ended, carried to the next read.
        let mut partial: Vec<u8> = Vec::new();
        let mut batch = OwnedBatch::new(self.name.clone());
        let mut last_bytes = 0usize;
        loop {
            let n = self
                .reader
                .read(&mut buf)
                .await
                .map_err(|source| SourceError::Read { what: self.name.clone(), source })?;
            let arrival = now_ms();
            if n == 0 {
                push_line(&mut batch, &partial, arrival);
                if !batch.is_empty() {
                    let _ = tx.send(SourceEvent::batch(batch)).await;
                }
                return Ok(());
            }
            let mut chunk = &buf[..n];
            if !partial.is_empty() {
                match memchr::memchr(b'\n', chunk) {
                    None => {
                        partial.extend_from_slice(chunk);
                        continue;
                    }
                    Some(end) => {
                        partial.extend_from_slice(&chunk[..end]);
                        push_line(&mut batch, &partial, arrival);
                        partial.clear();
                        chunk = &chunk[end + 1..];
                    }
                }
            }
            let mut start = 0;
            for end in memchr::memchr_iter(b'\n', chunk) {
                push_line(&mut batch, &chunk[start..end], arrival);
                start = end + 1;
                if batch.len() >= self.batch_size {
                    last_bytes = batch.bytes.len();
                    let full =
                        std::mem::replace(&mut batch, new_batch(&self.name, last_bytes, self.batch_size));
                    if tx.send(SourceEvent::batch(full)).await.is_err() {
                        return Ok(());
                    }
                }
            }
            partial.extend_from_slice(&chunk[start..]);
            if n < buf.len() && !batch.is_empty() {
                let part = std::mem::replace(&mut batch, new_batch(&self.name, last_bytes, self.batch_size));
                if tx.send(SourceEvent::batch(part)).await.is_err() {
                    return Ok(());
                }
            }
        }
    }
}

fn new_batch(name: &str, bytes: usize, records: usize) -> OwnedBatch {
    let mut b = OwnedBatch::new(name);
    b.reserve(records, bytes);
    b
}

#[inline]
fn push_line(batch: &mut OwnedBatch, line: &[u8], arrival: i64) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if !line.is_empty() {
        batch.push("", line, arrival);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_split_across_reads_and_batches_come_out_whole_and_in_order() {
        // A reader that returns a few bytes at a time, so lines straddle reads.
        let text = b"one\ntwo\r\n\nthree\nfour".to_vec();
        let (client, mut server) = tokio::io::duplex(4);
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for chunk in text.chunks(3) {
                let _ = server.write_all(chunk).await;
            }
        });
        let (tx, mut rx) = mpsc::channel(100);
        FileSource::new(client, "test", 2).run(tx).await.unwrap();
        let mut lines = Vec::new();
        while let Some(event) = rx.recv().await {
            let SourceEvent::Batch { batch, .. } = event else { continue };
            assert!(batch.len() <= 2);
            lines.extend(batch.view().records().map(|r| String::from_utf8(r.data.to_vec()).unwrap()));
        }
        assert_eq!(lines, ["one", "two", "three", "four"]);
    }
}
