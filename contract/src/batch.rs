//! Input records, packed as the host sends them: one byte buffer holding every record's
//! partition key and data back to back, and one column each of key lengths, data lengths and
//! arrival times.
//!
//! [`Batch`] is the borrowed view an operator reads; [`OwnedBatch`] builds one (the host and
//! the operator SDK's test harness use it).

use crate::{Error, NO_WATERMARK};

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
    watermark_ms: i64,
    bytes: &'a [u8],
    key_lens: &'a [u32],
    data_lens: &'a [u32],
    arrival_times_ms: &'a [i64],
}

impl<'a> Batch<'a> {
    /// A view over packed records, checked: the columns must be equally long, the lengths must
    /// add up to `bytes`, and every partition key must be UTF-8.
    pub fn new(
        shard_id: &'a str,
        now_ms: i64,
        bytes: &'a [u8],
        key_lens: &'a [u32],
        data_lens: &'a [u32],
        arrival_times_ms: &'a [i64],
    ) -> Result<Self, Error> {
        if key_lens.len() != data_lens.len() || key_lens.len() != arrival_times_ms.len() {
            return Err(Error::new(format!(
                "batch columns differ in length: {} keys, {} data, {} arrival times",
                key_lens.len(),
                data_lens.len(),
                arrival_times_ms.len()
            )));
        }
        let mut at = 0usize;
        for (i, (&key_len, &data_len)) in key_lens.iter().zip(data_lens).enumerate() {
            let key_end = at + key_len as usize;
            let end = key_end + data_len as usize;
            if end > bytes.len() {
                return Err(Error::new(format!("batch record {i}: lengths run past the batch's bytes")));
            }
            // ASCII first: inline, where `from_utf8` is a call (in wasm, per record).
            let key = &bytes[at..key_end];
            if !key.is_ascii() && std::str::from_utf8(key).is_err() {
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
        Ok(Self {
            shard_id,
            now_ms,
            watermark_ms: NO_WATERMARK,
            bytes,
            key_lens,
            data_lens,
            arrival_times_ms,
        })
    }

    /// The same batch with the event-time watermark `watermark_ms`.
    pub fn with_watermark_ms(mut self, watermark_ms: i64) -> Self {
        self.watermark_ms = watermark_ms;
        self
    }

    /// The shard every record of this batch came from.
    pub fn shard_id(&self) -> &'a str {
        self.shard_id
    }

    /// Processing time when the host handed over the batch, in ms since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// The event-time watermark: the smallest, over the shards being read and not idle, of the
    /// latest event time reported for them ([`Output::observe_event_time`](crate::Output::observe_event_time));
    /// [`NO_WATERMARK`] before any. It never goes back.
    pub fn watermark_ms(&self) -> i64 {
        self.watermark_ms
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.key_lens.len()
    }

    /// Whether the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.key_lens.is_empty()
    }

    /// The records, in order.
    pub fn records(&self) -> Records<'a> {
        Records(Walk::new(*self))
    }

    /// Each record's index and data, in order: [`records`](Self::records) for an operator that
    /// reads only the data, which skips making each record's partition key a `str` (in wasm a
    /// call per record) and the rest of a [`Record`].
    pub fn data(&self) -> Data<'a> {
        Data(Walk::new(*self))
    }
}

/// Where each record of a batch stands, in order: what [`Records`] and [`Data`] both walk.
#[derive(Debug)]
struct Walk<'a> {
    batch: Batch<'a>,
    index: usize,
    at: usize,
}

impl<'a> Walk<'a> {
    fn new(batch: Batch<'a>) -> Self {
        Self { batch, index: 0, at: 0 }
    }

    /// The next record's index, partition key and data.
    #[inline(always)]
    fn next(&mut self) -> Option<(usize, &'a [u8], &'a [u8])> {
        let b = &self.batch;
        let key_end = self.at + *b.key_lens.get(self.index)? as usize;
        let end = key_end + *b.data_lens.get(self.index)? as usize;
        // Batch::new checked every length, so no fallback below is ever taken.
        let key = b.bytes.get(self.at..key_end).unwrap_or_default();
        let data = b.bytes.get(key_end..end).unwrap_or_default();
        let index = self.index;
        self.index += 1;
        self.at = end;
        Some((index, key, data))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.batch.len() - self.index;
        (n, Some(n))
    }
}

/// Iterator over the index and data of each record of a [`Batch`].
#[derive(Debug)]
pub struct Data<'a>(Walk<'a>);

impl<'a> Iterator for Data<'a> {
    type Item = (u32, &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<(u32, &'a [u8])> {
        let (index, _, data) = self.0.next()?;
        Some((index as u32, data))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for Data<'_> {}

/// Iterator over the records of a [`Batch`].
#[derive(Debug)]
pub struct Records<'a>(Walk<'a>);

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    #[inline]
    fn next(&mut self) -> Option<Record<'a>> {
        let (index, key, data) = self.0.next()?;
        let b = &self.0.batch;
        Some(Record {
            index: index as u32,
            partition_key: std::str::from_utf8(key).unwrap_or_default(),
            data,
            arrival_time_ms: b.arrival_times_ms.get(index).copied().unwrap_or_default(),
            shard_id: b.shard_id,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for Records<'_> {}

/// A batch under construction, owning its buffers; its fields are the contract's `batch`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedBatch {
    /// The shard every record comes from.
    pub shard_id: String,
    /// Processing time of the batch, in ms since the Unix epoch.
    pub now_ms: i64,
    /// The event-time watermark ([`Batch::watermark_ms`]).
    pub watermark_ms: i64,
    /// Keys and data, back to back.
    pub bytes: Vec<u8>,
    /// Per record: key length.
    pub key_lens: Vec<u32>,
    /// Per record: data length.
    pub data_lens: Vec<u32>,
    /// Per record: arrival time, ms since the Unix epoch.
    pub arrival_times_ms: Vec<i64>,
    /// Per record, where its source has it (a Kinesis sequence number), back to back; empty
    /// when the source gives none. The host's bookkeeping for dead letters: never sent to the
    /// operator.
    pub positions: Vec<u8>,
    /// Per record: the length of its position (empty with `positions`).
    pub position_lens: Vec<u8>,
}

impl Default for OwnedBatch {
    fn default() -> Self {
        Self {
            shard_id: String::new(),
            now_ms: 0,
            watermark_ms: NO_WATERMARK,
            bytes: Vec::new(),
            key_lens: Vec::new(),
            data_lens: Vec::new(),
            arrival_times_ms: Vec::new(),
            positions: Vec::new(),
            position_lens: Vec::new(),
        }
    }
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
        self.key_lens.push(partition_key.len() as u32);
        self.data_lens.push(data.len() as u32);
        self.arrival_times_ms.push(arrival_time_ms);
    }

    /// Append a record given as it lies in another batch's bytes: its key (`key_len` bytes)
    /// followed by its data, in `key_and_data`.
    #[inline]
    pub fn push_packed(&mut self, key_len: u32, key_and_data: &[u8], arrival_time_ms: i64) {
        self.bytes.extend_from_slice(key_and_data);
        self.key_lens.push(key_len);
        self.data_lens.push(key_and_data.len() as u32 - key_len);
        self.arrival_times_ms.push(arrival_time_ms);
    }

    /// Give the record pushed last its position in the source (at most 255 bytes: a Kinesis
    /// sequence number has at most 128 digits). Either every record has one or none does.
    #[inline]
    pub fn push_position(&mut self, position: &[u8]) {
        let position = &position[..position.len().min(255)];
        self.positions.extend_from_slice(position);
        self.position_lens.push(position.len() as u8);
    }

    /// Each record's position in its source, if the source gave positions.
    pub fn positions(&self) -> impl Iterator<Item = Option<&[u8]>> + '_ {
        let present = self.position_lens.len() == self.len();
        let mut at = 0usize;
        (0..self.len()).map(move |i| {
            if !present {
                return None;
            }
            let len = usize::from(self.position_lens[i]);
            let position = self.positions.get(at..at + len);
            at += len;
            position
        })
    }

    /// Record `index`'s position in its source, as text, if the source gave one.
    pub fn position(&self, index: usize) -> Option<String> {
        let position = self.positions().nth(index)??;
        Some(String::from_utf8_lossy(position).into_owned())
    }

    /// Each record as `(key length, key and data, arrival time)`, as [`push_packed`](Self::push_packed)
    /// takes it, without checking the keys are UTF-8. Lengths that run past the bytes (only
    /// possible in a batch filled by hand) end the iteration.
    pub fn packed(&self) -> impl Iterator<Item = (u32, &[u8], i64)> + '_ {
        let mut at = 0usize;
        self.key_lens.iter().zip(&self.data_lens).zip(&self.arrival_times_ms).map_while(
            move |((&key_len, &data_len), &arrival)| {
                let end = at + key_len as usize + data_len as usize;
                let record = self.bytes.get(at..end)?;
                at = end;
                Some((key_len, record, arrival))
            },
        )
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.key_lens.len()
    }

    /// Whether no record was pushed.
    pub fn is_empty(&self) -> bool {
        self.key_lens.is_empty()
    }

    /// Remove every record, keeping the buffers' capacity.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.key_lens.clear();
        self.data_lens.clear();
        self.arrival_times_ms.clear();
        self.positions.clear();
        self.position_lens.clear();
    }

    /// Reserve room for `records` more records of `bytes` more bytes.
    pub fn reserve(&mut self, records: usize, bytes: usize) {
        self.bytes.reserve(bytes);
        self.key_lens.reserve(records);
        self.data_lens.reserve(records);
        self.arrival_times_ms.reserve(records);
    }

    /// The records as an operator sees them.
    pub fn view(&self) -> Batch<'_> {
        Batch {
            shard_id: &self.shard_id,
            now_ms: self.now_ms,
            watermark_ms: self.watermark_ms,
            bytes: &self.bytes,
            key_lens: &self.key_lens,
            data_lens: &self.data_lens,
            arrival_times_ms: &self.arrival_times_ms,
        }
    }

    /// A copy of the records `range` of this batch, as a batch of their own.
    pub fn slice(&self, range: std::ops::Range<usize>) -> OwnedBatch {
        let mut part = OwnedBatch::new(self.shard_id.clone());
        part.now_ms = self.now_ms;
        part.watermark_ms = self.watermark_ms;
        let records = self.view().records().zip(self.positions()).skip(range.start).take(range.len());
        for (record, position) in records {
            part.push(record.partition_key, record.data, record.arrival_time_ms);
            if let Some(position) = position {
                part.push_position(position);
            }
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
        let data: Vec<_> = b.view().data().collect();
        assert_eq!(data, vec![(0, &b"one"[..]), (1, &b""[..]), (2, &b"three"[..])]);
        assert_eq!(b.view().data().len(), 3);
        let mut copy = OwnedBatch::new("shard-0");
        for (key_len, record, arrival) in b.packed() {
            copy.push_packed(key_len, record, arrival);
        }
        assert_eq!(copy, b, "packed records copy over unchanged");
    }

    #[test]
    fn positions_follow_their_records_through_slices() {
        let mut b = OwnedBatch::new("shard-0");
        for (key, position) in [("A", "4960001"), ("B", ""), ("C", "4960003")] {
            b.push(key, b"x", 0);
            b.push_position(position.as_bytes());
        }
        assert_eq!(b.position(0).as_deref(), Some("4960001"));
        assert_eq!(b.position(2).as_deref(), Some("4960003"));
        assert_eq!(b.slice(2..3).position(0).as_deref(), Some("4960003"));
        let mut without = OwnedBatch::new("shard-0");
        without.push("A", b"x", 0);
        assert_eq!(without.position(0), None);
    }

    #[test]
    fn inconsistent_lengths_are_refused() {
        let err = Batch::new("s", 0, b"abc", &[2], &[5], &[0]).unwrap_err();
        assert!(err.message().contains("run past"), "{err}");
        let err = Batch::new("s", 0, b"abc", &[1], &[1], &[0]).unwrap_err();
        assert!(err.message().contains("account for 2"), "{err}");
        assert!(
            Batch::new("s", 0, &[0xff, 0xfe], &[2], &[0], &[0]).unwrap_err().message().contains("not UTF-8")
        );
        let err = Batch::new("s", 0, b"ab", &[1], &[1], &[]).unwrap_err();
        assert!(err.message().contains("columns differ"), "{err}");
    }
}
