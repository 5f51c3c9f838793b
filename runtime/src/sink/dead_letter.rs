//! The dead-letter destination: records the source could not pass on, the operator refused or
//! failed on, and results the sink cannot write, one JSON object each, with the reason, so
//! that nothing is dropped silently:
//!
//! `{"reason":"...","shard_id":"...","sequence_number":"...","partition_key":"...","arrival_time_ms":0,"data":"..."}`
//!
//! `data` is the record as text when it is UTF-8; otherwise `data_base64` holds it. Where:
//!
//! - standard error (the default) or a file (appended to): a line each, written and flushed at
//!   once, so a dead letter is on disk before the batch's results go on;
//! - `kinesis://STREAM`: a record each (partition key: the record's, or its shard's), through
//!   weir's Kinesis writer; data beyond [`KINESIS_DATA_BYTES`] is cut (`data_truncated`), so
//!   that even a 1 MiB record fits in a dead letter;
//! - `s3://BUCKET/PREFIX`: JSON lines batched into objects
//!   (`PREFIX/<start time>-<run id>-<n>.jsonl`), written every [`S3_FLUSH_INTERVAL`], at
//!   [`S3_OBJECT_BYTES`], at every checkpoint and at the end.
//!
//! A checkpoint waits for [`DeadLetterWriter::ack`] as it does for the sink: it is complete only
//! once the dead letters of the records it covers are written.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use weir_aws::{Policy, Service};
use weir_contract::DeadLetter;
use weir_kinesis::{Kinesis, KinesisWriter, Outbound, Stream};

use super::SinkError;
use crate::objects::{Condition, Objects};

/// Data bytes of a record kept in a Kinesis dead letter: the entry, with its JSON escaping and
/// the other fields, stays under the 1 MiB a Kinesis record may hold.
pub const KINESIS_DATA_BYTES: usize = 256 << 10;
/// How often buffered dead letters are written to S3 (when there are any).
pub const S3_FLUSH_INTERVAL: Duration = Duration::from_secs(5);
/// Buffered dead letters written to S3 at once when they reach this size.
pub const S3_OBJECT_BYTES: usize = 4 << 20;

#[derive(Serialize)]
struct Line<'a> {
    reason: &'a str,
    /// For a record behind the watermark: how many of its windows it missed (`all`: late,
    /// counted in none; `some`: partly late, those windows were emitted without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    late: Option<&'static str>,
    shard_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sequence_number: Option<&'a str>,
    partition_key: &'a str,
    arrival_time_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_base64: Option<String>,
    /// Set when `data` holds only the first bytes of the record (its length is `data_bytes`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    data_truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_bytes: Option<usize>,
}

/// `letter` as one JSON object (no newline), its data cut to `max_data` bytes if given.
pub fn encode(letter: &DeadLetter, max_data: Option<usize>) -> Vec<u8> {
    let full = &letter.data[..];
    let kept = match max_data {
        Some(max) if full.len() > max => &full[..max],
        _ => full,
    };
    let truncated = kept.len() < full.len();
    let text = std::str::from_utf8(kept).ok();
    let line = Line {
        reason: &letter.reason,
        late: letter.lateness().map(weir_contract::Lateness::missed),
        shard_id: &letter.shard_id,
        sequence_number: letter.sequence_number.as_deref(),
        partition_key: &letter.partition_key,
        arrival_time_ms: letter.arrival_time_ms,
        data: text,
        data_base64: text.is_none().then(|| base64::engine::general_purpose::STANDARD.encode(kept)),
        data_truncated: truncated,
        data_bytes: truncated.then_some(full.len()),
    };
    // A struct of strings and numbers always serialises.
    serde_json::to_vec(&line).unwrap_or_default()
}

/// What the pipeline sends an asynchronous destination.
enum Letters {
    Write(Vec<DeadLetter>),
    Ack(oneshot::Sender<()>),
}

/// Dead letters for a Kinesis stream, as the writer takes them.
struct KinesisLetters {
    records: Vec<(String, Vec<u8>)>,
    ack: Option<oneshot::Sender<()>>,
}

impl Outbound for KinesisLetters {
    fn records(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.records.iter().map(|(k, d)| (k.as_str(), d.as_slice()))
    }

    fn take_ack(&mut self) -> Option<oneshot::Sender<()>> {
        self.ack.take()
    }
}

/// Writes dead letters where `--dead-letter` says.
pub struct DeadLetterWriter {
    to: To,
    name: String,
}

enum To {
    /// Written and flushed in the caller.
    Now(Box<dyn Write + Send>),
    /// Handed to a task.
    Task { tx: mpsc::Sender<Letters>, task: JoinHandle<Result<(), SinkError>> },
}

impl DeadLetterWriter {
    /// Dead letters to standard error (the default).
    pub fn stderr() -> Self {
        Self::new(Box::new(std::io::stderr()), "stderr")
    }

    /// Dead letters appended to the file at `path`.
    pub fn append_to(path: &Path) -> Result<Self, SinkError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| SinkError::Write { what: path.display().to_string(), source })?;
        Ok(Self::new(Box::new(std::io::BufWriter::new(file)), path.display().to_string()))
    }

    /// Dead letters to any writer.
    pub fn new(out: Box<dyn Write + Send>, name: impl Into<String>) -> Self {
        Self { to: To::Now(out), name: name.into() }
    }

    /// Dead letters to a Kinesis stream, checked to exist.
    pub async fn kinesis(kinesis: Kinesis, stream: Stream) -> Result<Self, SinkError> {
        let name = stream.to_string();
        let writer = KinesisWriter::connect(kinesis, stream).await?;
        let (tx, mut rx) = mpsc::channel::<Letters>(16);
        let (out_tx, out_rx) = mpsc::channel::<KinesisLetters>(16);
        let task = tokio::spawn(async move {
            let writing = tokio::spawn(writer.run(out_rx));
            while let Some(letters) = rx.recv().await {
                let batch = match letters {
                    Letters::Write(letters) => KinesisLetters {
                        records: letters
                            .iter()
                            .map(|l| (kinesis_key(l), encode(l, Some(KINESIS_DATA_BYTES))))
                            .collect(),
                        ack: None,
                    },
                    Letters::Ack(ack) => KinesisLetters { records: Vec::new(), ack: Some(ack) },
                };
                if out_tx.send(batch).await.is_err() {
                    break;
                }
            }
            drop(out_tx);
            match writing.await {
                Ok(result) => result.map_err(SinkError::from),
                Err(e) => {
                    Err(SinkError::Write { what: "dead letters".into(), source: std::io::Error::other(e) })
                }
            }
        });
        Ok(Self { to: To::Task { tx, task }, name })
    }

    /// Dead letters batched into objects under `s3://BUCKET/PREFIX`; the prefix is listed once,
    /// so a missing bucket or permission is refused before anything runs.
    pub async fn s3(bucket: &str, prefix: &str, region: Option<&str>) -> Result<Self, SinkError> {
        let objects = Objects::s3(bucket, prefix, region).await;
        objects.probe().await?;
        let name = objects.location();
        let (tx, rx) = mpsc::channel::<Letters>(16);
        let task = tokio::spawn(S3Letters::new(objects).run(rx));
        Ok(Self { to: To::Task { tx, task }, name })
    }

    /// Where dead letters go, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Write `letters` (to a file: written and flushed before this returns).
    pub async fn write(&mut self, letters: &[DeadLetter]) -> Result<(), SinkError> {
        if letters.is_empty() {
            return Ok(());
        }
        match &mut self.to {
            To::Now(out) => {
                let error = |source| SinkError::Write { what: self.name.clone(), source };
                for letter in letters {
                    let mut line = encode(letter, None);
                    line.push(b'\n');
                    out.write_all(&line).map_err(error)?;
                }
                out.flush().map_err(error)
            }
            To::Task { tx, .. } => {
                // A task that stopped has its error reported by `close`.
                let _ = tx.send(Letters::Write(letters.to_vec())).await;
                Ok(())
            }
        }
    }

    /// Answered once every dead letter written before is stored (None: already so).
    pub async fn ack(&mut self) -> Option<oneshot::Receiver<()>> {
        let To::Task { tx, .. } = &self.to else { return None };
        let (ack, stored) = oneshot::channel();
        tx.send(Letters::Ack(ack)).await.ok()?;
        Some(stored)
    }

    /// Write what is buffered and stop.
    pub async fn close(self) -> Result<(), SinkError> {
        match self.to {
            To::Now(mut out) => {
                out.flush().map_err(|source| SinkError::Write { what: self.name.clone(), source })
            }
            To::Task { tx, task } => {
                drop(tx);
                task.await.unwrap_or_else(|e| {
                    Err(SinkError::Write { what: self.name.clone(), source: std::io::Error::other(e) })
                })
            }
        }
    }
}

/// A partition key Kinesis takes: the record's (1 to 256 characters), else its shard's.
fn kinesis_key(letter: &DeadLetter) -> String {
    let chars = letter.partition_key.chars().count();
    if (1..=weir_kinesis::writer::MAX_KEY_CHARS).contains(&chars) {
        letter.partition_key.clone()
    } else if !letter.shard_id.is_empty() {
        letter.shard_id.chars().take(weir_kinesis::writer::MAX_KEY_CHARS).collect()
    } else {
        "dead-letter".to_string()
    }
}

/// Dead letters buffered into S3 objects.
struct S3Letters {
    objects: Objects,
    /// Names this run's objects apart from any other run's.
    run: String,
    next: u64,
    buffer: Vec<u8>,
}

impl S3Letters {
    fn new(objects: Objects) -> Self {
        let now = jiff::Timestamp::now();
        let run = format!(
            "{}-{:08x}",
            now.strftime("%Y%m%dT%H%M%S%.3fZ"),
            std::process::id() ^ now.subsec_nanosecond() as u32
        );
        Self { objects, run, next: 0, buffer: Vec::new() }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Letters>) -> Result<(), SinkError> {
        let mut flush = tokio::time::interval(S3_FLUSH_INTERVAL);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                letters = rx.recv() => match letters {
                    Some(Letters::Write(letters)) => {
                        for letter in &letters {
                            self.buffer.extend_from_slice(&encode(letter, None));
                            self.buffer.push(b'\n');
                        }
                        if self.buffer.len() >= S3_OBJECT_BYTES {
                            self.flush().await?;
                        }
                    }
                    Some(Letters::Ack(ack)) => {
                        self.flush().await?;
                        let _ = ack.send(());
                    }
                    None => {
                        self.flush().await?;
                        return Ok(());
                    }
                },
                _ = flush.tick() => self.flush().await?,
            }
        }
    }

    /// Write the buffer as the next object, retrying with backoff while S3 fails transiently;
    /// an error retrying cannot fix (denied, no such bucket) stops the dead letters with it.
    async fn flush(&mut self) -> Result<(), SinkError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.next += 1;
        let name = format!("{}-{:06}.jsonl", self.run, self.next);
        let body = std::mem::take(&mut self.buffer);
        let (objects, name, body) = (&self.objects, name.as_str(), &body);
        let what = format!("write dead letters to {}", objects.describe(name));
        weir_aws::retry(Service::S3, Policy::WRITE, what, || {
            objects.put(name, body.clone(), "application/x-ndjson", Condition::Always)
        })
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(data: &[u8]) -> DeadLetter {
        DeadLetter {
            sequence_number: None,
            partition_key: "AMZN".into(),
            data: data.to_vec(),
            arrival_time_ms: 7,
            shard_id: "shardId-0".into(),
            reason: "bad".into(),
        }
    }

    #[test]
    fn text_stays_text_and_other_bytes_go_as_base64() {
        let text: serde_json::Value = serde_json::from_slice(&encode(&letter(b"{\"a\":1}"), None)).unwrap();
        assert_eq!(text["data"], "{\"a\":1}");
        assert!(text.get("data_base64").is_none());
        let bytes: serde_json::Value = serde_json::from_slice(&encode(&letter(&[0xff, 0xfe]), None)).unwrap();
        assert_eq!(bytes["data_base64"], "//4=");
        assert!(bytes.get("data").is_none());
    }

    #[test]
    fn a_record_too_large_for_a_kinesis_dead_letter_is_cut_and_says_so() {
        let big = vec![b'x'; 1 << 20];
        let line = encode(&letter(&big), Some(KINESIS_DATA_BYTES));
        assert!(line.len() < weir_kinesis::writer::MAX_RECORD_BYTES);
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["data_truncated"], true);
        assert_eq!(v["data_bytes"], 1 << 20);
        assert_eq!(v["data"].as_str().unwrap().len(), KINESIS_DATA_BYTES);
    }
}
