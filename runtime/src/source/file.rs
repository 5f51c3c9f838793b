//! A file or standard input as a source: one record per line, in order, as one shard. The
//! input ends at end of file.
//!
//! Lines carry no partition key (the operator keys records by their content); empty lines are
//! not records and are skipped. A line longer than [`MAX_LINE_BYTES`] (the largest record
//! Kinesis takes) is not a record either: it is skipped up to its newline and reported as a
//! dead letter with its line number ([`super::lines`]). A batch is sent when it is full, and
//! also whenever a read returns less than a buffer's worth, so that lines typed or piped in
//! slowly are processed at once instead of waiting for a full batch.

use std::path::PathBuf;

use tokio::io::AsyncRead;
use tokio::sync::mpsc;
use weir_contract::DeadLetter;

use super::input::Input;
use super::lines::{LineSplitter, Piece};
use super::{Batcher, SourceError, SourceEvent};
use crate::clock::now_ms;
use crate::routing::Router;

/// The longest line taken as a record: 1 MiB, the largest record Kinesis takes.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Lines of a reader.
pub struct FileSource {
    input: Input,
    name: String,
    batch_size: usize,
    max_line_bytes: usize,
}

impl FileSource {
    /// Lines of `reader`, reported as shard `name`, in batches of at most `batch_size` records
    /// per instance.
    pub fn new(
        reader: impl AsyncRead + Send + Unpin + 'static,
        name: impl Into<String>,
        batch_size: usize,
    ) -> Self {
        Self::of(Input::reader(reader), name, batch_size)
    }

    fn of(input: Input, name: impl Into<String>, batch_size: usize) -> Self {
        Self { input, name: name.into(), batch_size: batch_size.max(1), max_line_bytes: MAX_LINE_BYTES }
    }

    /// Lines of the file at `path`, read ahead on a thread of its own.
    pub async fn open(path: PathBuf, batch_size: usize) -> Result<Self, SourceError> {
        let what = path.display().to_string();
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|source| SourceError::Read { what: what.clone(), source })?;
        let input = Input::file(file.into_std().await)
            .map_err(|source| SourceError::Read { what: what.clone(), source })?;
        Ok(Self::of(input, what, batch_size))
    }

    /// Lines of standard input.
    pub fn stdin(batch_size: usize) -> Self {
        Self::new(tokio::io::stdin(), "stdin", batch_size)
    }

    pub(super) async fn run(
        mut self,
        tx: mpsc::Sender<SourceEvent>,
        router: &Router,
    ) -> Result<(), SourceError> {
        if tx.send(SourceEvent::root(&self.name)).await.is_err() {
            return Ok(());
        }
        let mut lines = LineSplitter::new(self.max_line_bytes);
        let mut batch = Batcher::new(router, self.name.clone());
        batch.reserve(self.batch_size, 0);
        // Full batches and dead letters of one read, sent once it is split.
        let mut ready: Vec<SourceEvent> = Vec::new();
        loop {
            let read = self
                .input
                .next()
                .await
                .map_err(|source| SourceError::Read { what: self.name.clone(), source })?;
            let n = read.len();
            let arrival = now_ms();
            let mut take = |piece: Piece<'_>| match piece {
                Piece::Line(_, line) => {
                    if push_line(&mut batch, line, arrival) >= self.batch_size {
                        ready.push(SourceEvent::batch(batch.take()));
                    }
                }
                Piece::TooLong(number) => ready.push(SourceEvent::Rejected(too_long(
                    &self.name,
                    self.max_line_bytes,
                    number,
                    arrival,
                ))),
            };
            if n == 0 {
                lines.finish(&mut take);
            } else {
                lines.feed(read, &mut take);
            }
            // A short read: whatever is batched goes now, rather than after the next read.
            if !self.input.was_full() && !batch.is_empty() {
                ready.push(SourceEvent::batch(batch.take()));
            }
            for event in ready.drain(..) {
                if tx.send(event).await.is_err() {
                    return Ok(());
                }
            }
            if n == 0 {
                return Ok(());
            }
        }
    }
}

fn too_long(name: &str, max: usize, line_number: u64, arrival: i64) -> DeadLetter {
    DeadLetter {
        sequence_number: None,
        partition_key: String::new(),
        data: Vec::new(),
        arrival_time_ms: arrival,
        shard_id: name.to_string(),
        reason: format!(
            "line {line_number} of {name} is longer than {max} bytes, the largest record Kinesis takes; it was skipped"
        ),
    }
}

#[inline]
/// Batch a line (its `\r` ending dropped; an empty line skipped); how many records the
/// sub-batch it went to holds now (0: skipped).
fn push_line(batch: &mut Batcher, line: &[u8], arrival: i64) -> usize {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() { 0 } else { batch.push("", line, arrival, None) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one() -> Router {
        Router::new(weir_contract::Grouping::PartitionKey, 1)
    }

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
        FileSource::new(client, "test", 2).run(tx, &one()).await.unwrap();
        let mut lines = Vec::new();
        while let Some(event) = rx.recv().await {
            let SourceEvent::Batch { batch, .. } = event else { continue };
            assert!(batch.len() <= 2);
            let [batch] = batch.parts() else { panic!("one instance, one part") };
            lines.extend(batch.view().records().map(|r| String::from_utf8(r.data.to_vec()).unwrap()));
        }
        assert_eq!(lines, ["one", "two", "three", "four"]);
    }

    #[tokio::test]
    async fn a_line_over_the_cap_becomes_a_dead_letter_and_the_lines_around_it_go_on() {
        let text = format!("one\n{}\nthree\n", "x".repeat(100));
        let mut source = FileSource::new(std::io::Cursor::new(text.into_bytes()), "test", 10);
        source.max_line_bytes = 50;
        let (tx, mut rx) = mpsc::channel(100);
        source.run(tx, &one()).await.unwrap();
        let (mut lines, mut dead) = (Vec::new(), Vec::new());
        while let Some(event) = rx.recv().await {
            match event {
                SourceEvent::Batch { batch, .. } => {
                    lines.extend(batch.parts().iter().flat_map(|p| {
                        p.view().records().map(|r| String::from_utf8(r.data.to_vec()).unwrap())
                    }))
                }
                SourceEvent::Rejected(letter) => dead.push(letter.reason),
                _ => {}
            }
        }
        assert_eq!(lines, ["one", "three"]);
        assert_eq!(dead.len(), 1);
        assert!(dead[0].starts_with("line 2 of test is longer than 50 bytes"), "{dead:?}");
    }

    #[tokio::test]
    async fn a_batch_closes_once_one_instance_has_a_full_call_and_no_call_gets_more() {
        // Two instances, grouped by TICKER: A and B belong to different ones.
        let router = Router::new(weir_contract::Grouping::JsonField("TICKER".into()), 2);
        let owner = |t: &str| crate::routing::owner(crate::routing::key_group(t.as_bytes()), 2);
        let (a, b) = ["T0", "T1", "T2", "T3", "T4", "T5"]
            .iter()
            .flat_map(|x| ["T0", "T1", "T2", "T3", "T4", "T5"].map(|y| (*x, y)))
            .find(|(x, y)| owner(x) == 0 && owner(y) == 1)
            .unwrap();
        let line = |t: &str| format!("{{\"TICKER\": \"{t}\"}}\n");
        let text: String = [a, b, a, b, b, b, a].iter().map(|t| line(t)).collect();
        let (tx, mut rx) = mpsc::channel(100);
        FileSource::new(std::io::Cursor::new(text.into_bytes()), "test", 2).run(tx, &router).await.unwrap();
        let mut sizes = Vec::new();
        while let Some(event) = rx.recv().await {
            if let SourceEvent::Batch { batch, .. } = event {
                sizes.push(batch.parts().iter().map(weir_contract::OwnedBatch::len).collect::<Vec<_>>());
            }
        }
        // a b a | b b | b a: each closed as one instance's share reached 2, the last at the end.
        assert_eq!(sizes, [vec![2, 1], vec![0, 2], vec![1, 1]]);
    }

    #[tokio::test]
    async fn a_file_read_ahead_on_its_own_thread_comes_out_whole_and_in_order() {
        // Several read buffers' worth, a line straddling each buffer's end.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lines.txt");
        let text: String = (0..100_000).map(|i| format!("line {i:06} {}\n", "x".repeat(i % 13))).collect();
        assert!(text.len() > 3 * crate::source::input::READ_BUFFER_BYTES);
        std::fs::write(&path, &text).unwrap();
        let (tx, mut rx) = mpsc::channel(100);
        let source = FileSource::open(path, 1000).await.unwrap();
        let reading = tokio::spawn(async move { source.run(tx, &one()).await });
        let mut lines = Vec::new();
        while let Some(event) = rx.recv().await {
            let SourceEvent::Batch { batch, .. } = event else { continue };
            lines.extend(
                batch.parts()[0].view().records().map(|r| String::from_utf8(r.data.to_vec()).unwrap()),
            );
        }
        reading.await.unwrap().unwrap();
        let expected: Vec<&str> = text.lines().collect();
        assert_eq!(lines, expected);
    }
}
