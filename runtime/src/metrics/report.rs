//! What is reported every `--stats-interval`: totals at one moment ([`Snapshot`]), as a
//! summary line in the log or a CloudWatch EMF line ([`StatsFormat`]).

use std::time::Duration;

use super::Metrics;
use super::emf::EmfFormat;

/// Totals at one moment, for the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Records read.
    pub records_in: u64,
    /// Records emitted.
    pub records_out: u64,
    /// Dead letters.
    pub dead_letters: u64,
    /// Operator restarts.
    pub operator_restarts: u64,
    /// Read throttles.
    pub read_throttles: u64,
    /// Sink retries.
    pub sink_retries: u64,
    /// Records the Kinesis sink wrote (acknowledged).
    pub sink_records: u64,
    /// Switches to a new operator version (rollbacks included).
    pub operator_swaps: u64,
    /// Switches back after a new version failed.
    pub operator_rollbacks: u64,
    /// New versions not switched to.
    pub versions_refused: u64,
    /// Shards being read now.
    pub shards_reading: i64,
    /// Subscriptions made again after they went silent or ended early, or refused in use.
    pub resubscriptions: u64,
    /// The shard furthest behind, and by how many ms.
    pub furthest_behind: Option<(String, i64)>,
    /// Checkpoints completed.
    pub checkpoints: u64,
    /// Checkpoints that failed.
    pub checkpoint_failures: u64,
    /// Milliseconds since the last checkpoint completed; None before the first.
    pub checkpoint_age_ms: Option<i64>,
    /// Leases this worker holds now (with `--lease-table`).
    pub leases_held: i64,
    /// Free leases taken (new shards, or given up by another worker).
    pub leases_taken: u64,
    /// Leases taken from a worker that stopped renewing.
    pub leases_stolen: u64,
    /// Leases found taken by another worker, or dropped when renewal failed.
    pub leases_lost: u64,
    /// Input records a candidate shadowing the live version processed, outputs compared.
    pub shadow_compared: u64,
    /// Differences a candidate's outputs showed, all kinds.
    pub shadow_differences: u64,
}

impl Metrics {
    /// Totals now.
    pub fn snapshot(&self) -> Snapshot {
        let shards: Vec<String> = self.shards.lock().map(|s| s.iter().cloned().collect()).unwrap_or_default();
        let mut snap = Snapshot::default();
        for shard in shards {
            let m = self.shard(&shard);
            snap.records_in += m.records_in.get();
            snap.dead_letters += m.dead_letters.get();
            snap.read_throttles += m.read_throttles.get();
            let behind = m.millis_behind_latest.get();
            if behind > snap.furthest_behind.as_ref().map_or(0, |(_, b)| *b) {
                snap.furthest_behind = Some((shard, behind));
            }
        }
        let instances: Vec<usize> =
            self.instances.lock().map(|s| s.iter().copied().collect()).unwrap_or_default();
        for instance in instances {
            let m = self.instance(instance);
            snap.records_out += m.records_out.get();
            snap.operator_restarts += m.operator_restarts.get();
        }
        if let Some(stats) = self.sink.watched() {
            snap.sink_retries = stats.retries.load(std::sync::atomic::Ordering::Relaxed);
            snap.sink_records = stats.records.load(std::sync::atomic::Ordering::Relaxed);
        }
        snap.operator_swaps = self.operator_swaps.get();
        snap.operator_rollbacks = self.operator_rollbacks.get();
        snap.versions_refused = self.versions_refused();
        snap.shards_reading = self.shards_reading.get();
        snap.resubscriptions = self.fan_out.resubscriptions();
        snap.checkpoints = self.checkpoints.completed.get();
        snap.checkpoint_failures = self.checkpoints.failures.get();
        snap.checkpoint_age_ms = self.checkpoints.age_ms();
        snap.leases_held = self.leases.held.get();
        snap.leases_taken = self.leases.taken.get();
        snap.leases_stolen = self.leases.stolen.get();
        snap.leases_lost = self.leases.lost.get();
        snap.shadow_compared = self.shadow.records_compared.get();
        snap.shadow_differences = self.shadow.total_differences();
        snap
    }
}

/// How the counters are reported every stats interval.
#[derive(Clone, Debug)]
pub enum StatsFormat {
    /// A summary line in the log.
    Log,
    /// A CloudWatch Embedded Metric Format line on standard error (and one more at the end, so
    /// that every record is counted).
    Emf(EmfFormat),
}

impl StatsFormat {
    /// Report the interval from `before` to `now`, `elapsed` long.
    pub fn report(&self, now: &Snapshot, before: &Snapshot, elapsed: Duration) {
        match self {
            StatsFormat::Log => tracing::info!("{}", now.summary(before, elapsed)),
            StatsFormat::Emf(format) => {
                use std::io::Write;
                let line = format.line(now, before, jiff::Timestamp::now().as_millisecond());
                // Like a log line, a report that cannot be written is not worth stopping for.
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
        }
    }
}

impl Snapshot {
    /// One log line: totals, and the input rate over `elapsed` since `before`.
    pub fn summary(&self, before: &Snapshot, elapsed: Duration) -> String {
        let rate = (self.records_in - before.records_in) as f64 / elapsed.as_secs_f64().max(1e-9);
        let mut line = format!(
            "records in {} ({:.0}/s), out {}, dead letters {}, operator restarts {}",
            self.records_in, rate, self.records_out, self.dead_letters, self.operator_restarts
        );
        if let Some((shard, behind)) = &self.furthest_behind {
            line.push_str(&format!(", furthest behind {shard} by {behind} ms"));
        }
        if self.read_throttles > 0 {
            line.push_str(&format!(", read throttles {}", self.read_throttles));
        }
        if self.sink_retries > 0 {
            line.push_str(&format!(", sink retries {}", self.sink_retries));
        }
        if self.resubscriptions > 0 {
            line.push_str(&format!(", resubscriptions {}", self.resubscriptions));
        }
        if self.shadow_compared > 0 {
            line.push_str(&format!(
                ", candidate compared {} differences {}",
                self.shadow_compared, self.shadow_differences
            ));
        }
        line
    }
}
