//! What one operator call produces: output records, packed like input records, and the input
//! records the operator refused.

/// An input record the operator refused, with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// Index of the record in its batch.
    pub index: u32,
    /// Why the record was refused.
    pub reason: String,
}

/// How far behind the watermark a record came, for an operator that works in event time.
///
/// On the wire (`wit/operator.wit`, `rejection.reason`) it is the start of the reason: `late: `
/// or `partly late: `. The host counts both (`weir_late_records_total{missed="all"|"some"}`)
/// and marks the dead letter (`"late":"all"|"some"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lateness {
    /// Every window the record belongs to had been emitted: it counts in none.
    Late,
    /// Some of its windows had been emitted without it; it counts in the others. Reported,
    /// not refused: those emitted windows are incomplete.
    PartlyLate,
}

impl Lateness {
    /// The tag a reason starts with.
    pub const fn tag(self) -> &'static str {
        match self {
            Lateness::Late => "late: ",
            Lateness::PartlyLate => "partly late: ",
        }
    }

    /// How the dead letter and the metric name it: how many of its windows it missed.
    pub const fn missed(self) -> &'static str {
        match self {
            Lateness::Late => "all",
            Lateness::PartlyLate => "some",
        }
    }

    /// The lateness a reason carries, if any.
    pub fn of(reason: &str) -> Option<Self> {
        [Lateness::Late, Lateness::PartlyLate].into_iter().find(|l| reason.starts_with(l.tag()))
    }
}

/// Output of one call: records to write to the sink, and rejected input records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// Keys and data of the output records, back to back.
    pub bytes: Vec<u8>,
    /// Per output record: key length.
    pub key_lens: Vec<u32>,
    /// Per output record: data length.
    pub data_lens: Vec<u32>,
    /// Input records refused by the operator.
    pub rejected: Vec<Rejection>,
    /// The latest event time among the input records the operator accepted, if it works in
    /// event time ([`observe_event_time`](Self::observe_event_time)).
    pub event_time_ms: Option<i64>,
}

impl Output {
    /// Emit a record with this partition key and data.
    #[inline]
    pub fn emit(&mut self, partition_key: &str, data: &[u8]) {
        self.emit_with(partition_key, |buf| buf.extend_from_slice(data));
    }

    /// Emit a record whose data `write` appends to the buffer it is given: serialise straight
    /// into the output, with no intermediate allocation.
    #[inline]
    pub fn emit_with(&mut self, partition_key: &str, write: impl FnOnce(&mut Vec<u8>)) {
        self.bytes.extend_from_slice(partition_key.as_bytes());
        let start = self.bytes.len();
        write(&mut self.bytes);
        self.key_lens.push(partition_key.len() as u32);
        self.data_lens.push((self.bytes.len() - start) as u32);
    }

    /// Refuse input record `index` of the current batch: the host sends it to the dead-letter
    /// destination with `reason`.
    pub fn reject(&mut self, index: u32, reason: impl Into<String>) {
        self.rejected.push(Rejection { index, reason: reason.into() });
    }

    /// Refuse input record `index` as late (every window it belongs to was emitted); `reason`
    /// says by how much and what to change.
    pub fn reject_late(&mut self, index: u32, reason: impl std::fmt::Display) {
        self.reject(index, format!("{}{reason}", Lateness::Late.tag()));
    }

    /// Report input record `index`, which the operator kept, as partly late: it counts in its
    /// open windows, but some were emitted without it (`reason` names them). The host counts it
    /// and sends it to the dead-letter destination, once, so nobody takes those windows for
    /// complete.
    pub fn report_partly_late(&mut self, index: u32, reason: impl std::fmt::Display) {
        self.reject(index, format!("{}{reason}", Lateness::PartlyLate.tag()));
    }

    /// Report that an input record with event time `time_ms` (ms since the Unix epoch) was
    /// accepted: the host folds the latest into the watermark of the record's shard.
    #[inline]
    pub fn observe_event_time(&mut self, time_ms: i64) {
        if self.event_time_ms.is_none_or(|t| time_ms > t) {
            self.event_time_ms = Some(time_ms);
        }
    }

    /// Number of output records.
    pub fn len(&self) -> usize {
        self.key_lens.len()
    }

    /// Whether there is neither an output record nor a rejection (an event time alone counts as
    /// empty).
    pub fn is_empty(&self) -> bool {
        self.key_lens.is_empty() && self.rejected.is_empty()
    }

    /// Remove everything, keeping capacity.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.key_lens.clear();
        self.data_lens.clear();
        self.rejected.clear();
        self.event_time_ms = None;
    }

    /// Append all of `other`'s records and rejections.
    pub fn append(&mut self, other: &Output) {
        self.bytes.extend_from_slice(&other.bytes);
        self.key_lens.extend_from_slice(&other.key_lens);
        self.data_lens.extend_from_slice(&other.data_lens);
        self.rejected.extend_from_slice(&other.rejected);
        if let Some(t) = other.event_time_ms {
            self.observe_event_time(t);
        }
    }

    /// The output records as `(partition key, data)`, in order. A key that is not UTF-8 (only
    /// possible if the buffers were filled by hand) reads as empty.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &[u8])> + '_ {
        let mut at = 0usize;
        self.key_lens.iter().zip(&self.data_lens).map(move |(&key_len, &data_len)| {
            let key_end = at + key_len as usize;
            let end = key_end + data_len as usize;
            let key = self.bytes.get(at..key_end).unwrap_or_default();
            let data = self.bytes.get(key_end..end).unwrap_or_default();
            at = end;
            (std::str::from_utf8(key).unwrap_or_default(), data)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emitted_records_read_back_in_order() {
        let mut out = Output::default();
        out.emit("AMZN", b"1");
        out.emit_with("GOOG", |b| b.extend_from_slice(b"22"));
        out.reject(3, "bad");
        let got: Vec<_> = out.iter().collect();
        assert_eq!(got, vec![("AMZN", &b"1"[..]), ("GOOG", &b"22"[..])]);
        assert_eq!(out.rejected, vec![Rejection { index: 3, reason: "bad".into() }]);
        let mut all = Output::default();
        all.append(&out);
        all.append(&out);
        assert_eq!(all.iter().count(), 4);
    }
}
