//! A record that did not make it through an operator, with the reason: what the host writes to
//! the dead-letter destination and what the SDK's test harness collects.

use crate::Record;

/// An input record the operator refused or failed on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// The record's partition key.
    pub partition_key: String,
    /// The record's data.
    pub data: Vec<u8>,
    /// When the record arrived, in ms since the Unix epoch.
    pub arrival_time_ms: i64,
    /// The shard it came from.
    pub shard_id: String,
    /// Where its shard has it (a Kinesis sequence number), if the source says.
    pub sequence_number: Option<String>,
    /// Why it was refused.
    pub reason: String,
}

impl DeadLetter {
    /// How late the record was, if the operator refused or reported it for that.
    pub fn lateness(&self) -> Option<crate::Lateness> {
        crate::Lateness::of(&self.reason)
    }

    /// The dead letter for `record`, refused for `reason`.
    pub fn new(record: &Record<'_>, reason: impl Into<String>) -> Self {
        Self {
            partition_key: record.partition_key.to_string(),
            data: record.data.to_vec(),
            arrival_time_ms: record.arrival_time_ms,
            shard_id: record.shard_id.to_string(),
            sequence_number: None,
            reason: reason.into(),
        }
    }
}
