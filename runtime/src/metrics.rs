//! Counters of what the runtime does, shared by its tasks, summarised in the log. Names follow
//! `weir_<noun>_total` so they can be exported as they are.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// The runtime's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// `weir_records_in_total`: records read from the source.
    pub records_in: AtomicU64,
    /// `weir_records_out_total`: records written to the sink.
    pub records_out: AtomicU64,
    /// `weir_dead_letters_total`: records sent to the dead-letter destination.
    pub dead_letters: AtomicU64,
    /// `weir_batches_total`: batches processed.
    pub batches: AtomicU64,
    /// `weir_operator_restarts_total`: instances replaced after a trap or failure.
    pub operator_restarts: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// See [`Metrics::records_in`].
    pub records_in: u64,
    /// See [`Metrics::records_out`].
    pub records_out: u64,
    /// See [`Metrics::dead_letters`].
    pub dead_letters: u64,
    /// See [`Metrics::batches`].
    pub batches: u64,
    /// See [`Metrics::operator_restarts`].
    pub operator_restarts: u64,
}

impl Metrics {
    /// Add to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            records_in: self.records_in.load(Relaxed),
            records_out: self.records_out.load(Relaxed),
            dead_letters: self.dead_letters.load(Relaxed),
            batches: self.batches.load(Relaxed),
            operator_restarts: self.operator_restarts.load(Relaxed),
        }
    }
}

impl Snapshot {
    /// One log line: totals, and the input rate over `elapsed` since `before`.
    pub fn summary(&self, before: &Snapshot, elapsed: Duration) -> String {
        let rate = (self.records_in - before.records_in) as f64 / elapsed.as_secs_f64().max(1e-9);
        format!(
            "records in {} ({:.0}/s), out {}, dead letters {}, operator restarts {}",
            self.records_in, rate, self.records_out, self.dead_letters, self.operator_restarts
        )
    }
}
