//! Input records, packed as the host sends them: one byte buffer holding every record's
//! partition key and data back to back, plus one fixed-size [`RecordMeta`] per record.
//!
//! [`Batch`] is the borrowed view an operator reads; [`OwnedBatch`] builds one (the host and
//! the [`Harness`](crate::Harness) use it).

use crate::Error;

/// Fixed-size fields of one record; mirrors `record-meta` in `wit/operator.wit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordMeta {
    /// Length in bytes of the partition key.
    pub key_len: u32,
    /// Length in bytes of the data.
    pub data_len: u32,
    /// When the source received the record, in ms since the Unix epoch.
    pub arrival_time_ms: i64,
}

/// One input record, borrowed from its batch.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    /// Position of the record in its batch (what [`Output::reject`](crate::Output::reject) takes).
    pub index: u32,
    /// The partition key the producer gave the record.
    pub partition_key: &'a str,
    /// The record's payload.
    pub data: &'a [u8],
    /// When the source received the record, in ms since the Unix epoch.
    pub arrival_time_ms: i64,
    /// The shard the record came from.
    pub shard_id: &'a str,
}

/// A batch of records from one shard, as an operator sees it.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    shard_id: &'a str,
    now_ms: i64,
    bytes: &'a [u8],
    records: &'a [RecordMeta],
}

impl<'a> Batch<'a> {
    /// A view over packed records, checked: the lengths must add up to `bytes` and every
    /// partition key must be UTF-8.
    pub fn new(
        shard_id: &'a str,
        now_ms: i64,
        bytes: &'a [u8],
        records: &'a [RecordMeta],
    ) -> Result<Self, Error> {
        let mut at = 0usize;
        for (i, meta) in records.iter().enumerate() {
            let key_end = at + meta.key_len as usize;
            let end = key_end + meta.data_len as usize;
            let key = bytes
                .get(at..key_end)
                .ok_or_else(|| Error::new(format!("batch record {i}: lengths run past the batch's bytes")))?;
            if end > bytes.len() {
                return Err(Error::new(format!("batch record {i}: lengths run past the batch's bytes")));
            }
            if std::str::from_utf8(key).is_err() {
                return Err(Error::new(format!("batch record {i}: partition key is not UTF-8")));
            }
            at = end;
        }
        if at != bytes.len() {
            return Err(Error::new(format!(
                "batch has {} bytes but its records account for {at}",
                bytes.len()
            )));
        }
        Ok(Self { shard_id, now_ms, bytes, records })
    }

    /// The shard every record of this batch came from.
    pub fn shard_id(&self) -> &'a str {
        self.shard_id
    }

    /// Processing time when the host handed over the batch, in ms since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The records, in order.
    pub fn records(&self) -> Records<'a> {
        Records { batch: *self, index: 0, at: 0 }
    }
}

/// Iterator over the records of a [`Batch`].
#[derive(Debug)]
pub struct Records<'a> {
    batch: Batch<'a>,
    index: usize,
    at: usize,
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    #[inline]
    fn next(&mut self) -> Option<Record<'a>> {
        let meta = self.batch.records.get(self.index)?;
        let key_end = self.at + meta.key_len as usize;
        let end = key_end + meta.data_len as usize;
        // Batch::new checked every length and key, so neither fallback is ever taken.
        let key = self.batch.bytes.get(self.at..key_end).unwrap_or_default();
        let partition_key = std::str::from_utf8(key).unwrap_or_default();
        let data = self.batch.bytes.get(key_end..end).unwrap_or_default();
        let record = Record {
            index: self.index as u32,
            partition_key,
            data,
            arrival_time_ms: meta.arrival_time_ms,
            shard_id: self.batch.shard_id,
        };
        self.index += 1;
        self.at = end;
        Some(record)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.batch.records.len() - self.index;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Records<'_> {}

/// A batch under construction, owning its buffers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnedBatch {
    /// The shard every record comes from.
    pub shard_id: String,
    /// Processing time of the batch, in ms since the Unix epoch.
    pub now_ms: i64,
    /// Keys and data, back to back.
    pub bytes: Vec<u8>,
    /// One entry per record.
    pub records: Vec<RecordMeta>,
}

impl OwnedBatch {
    /// An empty batch for `shard_id`.
    pub fn new(shard_id: impl Into<String>) -> Self {
        Self { shard_id: shard_id.into(), ..Self::default() }
    }

    /// Append a record. Keys and data longer than 4 GiB are not representable (Kinesis caps a
    /// record at 1 MiB and a key at 256 characters).
    #[inline]
    pub fn push(&mut self, partition_key: &str, data: &[u8], arrival_time_ms: i64) {
        self.bytes.extend_from_slice(partition_key.as_bytes());
        self.bytes.extend_from_slice(data);
        self.records.push(RecordMeta {
            key_len: partition_key.len() as u32,
            data_len: data.len() as u32,
            arrival_time_ms,
        });
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no record was pushed.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Remove every record, keeping the buffers' capacity.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.records.clear();
    }

    /// The records as an operator sees them.
    pub fn view(&self) -> Batch<'_> {
        Batch { shard_id: &self.shard_id, now_ms: self.now_ms, bytes: &self.bytes, records: &self.records }
    }

    /// A copy of the records `range` of this batch, as a batch of their own.
    pub fn slice(&self, range: std::ops::Range<usize>) -> OwnedBatch {
        let mut part = OwnedBatch::new(self.shard_id.clone());
        part.now_ms = self.now_ms;
        for record in self.view().records().skip(range.start).take(range.len()) {
            part.push(record.partition_key, record.data, record.arrival_time_ms);
        }
        part
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_as_pushed() {
        let mut b = OwnedBatch::new("shard-0");
        b.push("AMZN", b"one", 1);
        b.push("", b"", 2);
        b.push("GOOG", b"three", 3);
        let got: Vec<_> =
            b.view().records().map(|r| (r.index, r.partition_key, r.data, r.arrival_time_ms)).collect();
        assert_eq!(
            got,
            vec![(0, "AMZN", &b"one"[..], 1), (1, "", &b""[..], 2), (2, "GOOG", &b"three"[..], 3)]
        );
        assert_eq!(
            b.slice(1..3).view().records().map(|r| r.partition_key).collect::<Vec<_>>(),
            vec!["", "GOOG"]
        );
    }

    #[test]
    fn inconsistent_lengths_are_refused() {
        let metas = [RecordMeta { key_len: 2, data_len: 5, arrival_time_ms: 0 }];
        let err = Batch::new("s", 0, b"abc", &metas).unwrap_err();
        assert!(err.message().contains("run past"), "{err}");
        let metas = [RecordMeta { key_len: 1, data_len: 1, arrival_time_ms: 0 }];
        let err = Batch::new("s", 0, b"abc", &metas).unwrap_err();
        assert!(err.message().contains("account for 2"), "{err}");
        let metas = [RecordMeta { key_len: 2, data_len: 0, arrival_time_ms: 0 }];
        assert!(Batch::new("s", 0, &[0xff, 0xfe], &metas).is_err());
    }
}
