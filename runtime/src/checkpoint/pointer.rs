//! `LATEST`, the pointer a checkpoint location keeps to its newest complete checkpoint; also
//! what a store reports of each checkpoint it wrote.

use serde::{Deserialize, Serialize};

/// `LATEST`: which checkpoint is the newest, with a summary for people and tools.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pointer {
    /// The checkpoint's number.
    pub id: u64,
    /// Its object, relative to the location.
    pub object: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// When it was taken.
    pub taken_at: jiff::Timestamp,
    /// The operator whose state it holds (its sha256).
    pub operator: String,
    /// The watermark at the cut.
    pub watermark_ms: i64,
    /// Output records acknowledged by the sink up to the cut, over every run so far.
    pub records_out: u64,
    /// The process that wrote it last (host, process id, start time): a process taking over
    /// the location writes its own, which changes the ETag the previous writer expects.
    #[serde(default)]
    pub writer: String,
}

impl Pointer {
    /// The pointer to checkpoint `meta`, written by this process to `object` (`bytes` long).
    pub fn to(meta: &super::Meta, object: String, bytes: u64) -> Self {
        Self {
            id: meta.id,
            object,
            bytes,
            taken_at: meta.taken_at,
            operator: meta.operator.digest.clone(),
            watermark_ms: meta.watermark_ms,
            records_out: meta.records_out,
            writer: this_writer(),
        }
    }
}

/// This process, as pointers name their writer.
pub fn this_writer() -> String {
    static WRITER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    WRITER
        .get_or_init(|| {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".to_string());
            format!("{host}/{}/{}", std::process::id(), jiff::Timestamp::now())
        })
        .clone()
}
