//! The dead-letter destination: records the operator refused or failed on, one JSON object per
//! line, with the reason, so that nothing is dropped silently:
//!
//! `{"reason":"...","shard_id":"...","partition_key":"...","arrival_time_ms":0,"data":"..."}`
//!
//! `data` is the record as text when it is UTF-8; otherwise `data_base64` holds it.

use std::io::Write;
use std::path::Path;

use base64::Engine as _;
use serde::Serialize;
use weir_contract::DeadLetter;

use super::SinkError;

#[derive(Serialize)]
struct Line<'a> {
    reason: &'a str,
    shard_id: &'a str,
    partition_key: &'a str,
    arrival_time_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_base64: Option<String>,
}

/// Writes dead letters as JSON lines. Dead letters are rare, so writes are synchronous and
/// flushed at once: a dead letter is on disk before the batch's results go on.
pub struct DeadLetterWriter {
    out: Box<dyn Write + Send>,
    name: String,
}

impl DeadLetterWriter {
    /// Dead letters to standard error (the default).
    pub fn stderr() -> Self {
        Self { out: Box::new(std::io::stderr()), name: "stderr".into() }
    }

    /// Dead letters appended to the file at `path`.
    pub fn append_to(path: &Path) -> Result<Self, SinkError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| SinkError::Write { what: path.display().to_string(), source })?;
        Ok(Self { out: Box::new(std::io::BufWriter::new(file)), name: path.display().to_string() })
    }

    /// Dead letters to any writer.
    pub fn new(out: Box<dyn Write + Send>, name: impl Into<String>) -> Self {
        Self { out, name: name.into() }
    }

    /// Write `letters` and flush.
    pub fn write(&mut self, letters: &[DeadLetter]) -> Result<(), SinkError> {
        if letters.is_empty() {
            return Ok(());
        }
        for letter in letters {
            let text = std::str::from_utf8(&letter.data).ok();
            let line = Line {
                reason: &letter.reason,
                shard_id: &letter.shard_id,
                partition_key: &letter.partition_key,
                arrival_time_ms: letter.arrival_time_ms,
                data: text,
                data_base64: text
                    .is_none()
                    .then(|| base64::engine::general_purpose::STANDARD.encode(&letter.data)),
            };
            serde_json::to_writer(&mut self.out, &line)
                .map_err(std::io::Error::from)
                .and_then(|()| self.out.write_all(b"\n"))
                .map_err(|source| SinkError::Write { what: self.name.clone(), source })?;
        }
        self.out.flush().map_err(|source| SinkError::Write { what: self.name.clone(), source })
    }
}
