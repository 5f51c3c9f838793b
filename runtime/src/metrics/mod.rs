//! What the runtime counts, per shard where it matters: exported in the Prometheus text format
//! at `--metrics-addr` ([`server`]), and every `--stats-interval` either summarised in the log
//! or written as CloudWatch Embedded Metric Format lines ([`report`], [`emf`]).
//!
//! Names follow Prometheus conventions (`weir_<noun>_total` for counters, a `shard` label for
//! per-shard series, an `instance` label for per-operator-instance series). Each series is
//! declared once, with its name and help, in a [`series!`](crate::series) block.

pub mod aws;
pub mod checkpoint;
pub mod emf;
pub mod fan_out;
pub mod lease;
pub mod report;
pub mod series;
pub mod server;
pub mod shadow;
pub mod sink;
pub mod slots;

pub use server::serve;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use weir_kinesis::WriterStats;

pub use checkpoint::CheckpointMetrics;
pub use fan_out::FanOutMetrics;
pub use lease::LeaseMetrics;
pub use report::{Snapshot, StatsFormat};
pub use shadow::ShadowMetrics;
use sink::SinkCollector;
pub use slots::SlotUsage;
use slots::SlotsCollector;

/// Buckets of [`Metrics::swap_pause`], in seconds: fine around the 2 ms goal.
pub const SWAP_PAUSE_BUCKETS: [f64; 12] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.01, 0.025, 0.1, 1.0];

/// The label of per-shard series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct ShardLabel {
    /// The shard id (or the source's name for files and the generator).
    pub shard: String,
}

/// The label of per-instance series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct InstanceLabel {
    /// The instance's index, from 0.
    pub instance: String,
}

/// The label of `weir_late_records_total`: how many of its windows a record missed.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct MissedLabel {
    /// `all` (late: counted in no window) or `some` (partly late).
    pub missed: &'static str,
}

/// The label of `weir_operator_versions_refused_total`: why a new version was not run.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct RefusedLabel {
    /// `unsigned`, `untrusted-key`, `bad-signature`, `replayed` (with `--trust`: refused
    /// before it was downloaded), `unloadable` (download, digest, compile or init failed),
    /// `state` (it could not take the running version's state).
    pub reason: &'static str,
}

/// One operator instance's series.
#[derive(Clone, Debug, Default)]
pub struct InstanceMetrics {
    /// Records the instance emitted.
    pub records_out: Counter,
    /// Times the instance was replaced after a trap or failure.
    pub operator_restarts: Counter,
}

/// One shard's series, cheap to clone and to update (each is an atomic).
#[derive(Clone, Debug, Default)]
pub struct ShardMetrics {
    /// Records read from the shard.
    pub records_in: Counter,
    /// Records of the shard sent to the dead-letter destination.
    pub dead_letters: Counter,
    /// How far the last read was behind the shard's newest record.
    pub millis_behind_latest: Gauge,
    /// Reads refused for throughput.
    pub read_throttles: Counter,
    /// Reads retried after a transient failure (throttles included).
    pub read_retries: Counter,
    /// Expired shard iterators replaced (after the last sequence number read).
    pub iterator_renewals: Counter,
}

crate::series! {
    /// The runtime's metrics.
    #[derive(Debug)]
    pub struct Metrics {
        /// Records read, per shard.
        records_in: Family<ShardLabel, Counter> = Family::default() => "weir_records_in",
        /// Records emitted by the operator, per instance.
        records_out: Family<InstanceLabel, Counter> = Family::default() => "weir_records_out",
        /// Records sent to the dead-letter destination.
        dead_letters: Family<ShardLabel, Counter> = Family::default() => "weir_dead_letters",
        /// Operator instances replaced after a trap or failure, per instance.
        operator_restarts: Family<InstanceLabel, Counter> = Family::default() => "weir_operator_restarts",
        /// How far the last read was behind the shard's newest record, ms.
        millis_behind_latest: Family<ShardLabel, Gauge> = Family::default() => "weir_millis_behind_latest",
        /// GetRecords calls refused for throughput.
        read_throttles: Family<ShardLabel, Counter> = Family::default() => "weir_read_throttles",
        /// GetRecords calls retried after a transient failure.
        read_retries: Family<ShardLabel, Counter> = Family::default() => "weir_read_retries",
        /// Expired shard iterators replaced after the last sequence number read.
        iterator_renewals: Family<ShardLabel, Counter> = Family::default() => "weir_iterator_renewals",
        /// Records behind the watermark that missed windows already emitted (missed=all: late,
        /// counted in none; some: partly late, counted in the open ones).
        late_records: Family<MissedLabel, Counter> = Family::default() => "weir_late_records",
        /// Source batches handed to the instances (split among them by key).
        pub batches: Counter = Counter::default() => "weir_batches",
        /// Sub-batches handed to the instances whose results the pipeline has not taken yet
        /// (a source waits while this is at its limit).
        pub in_flight: Gauge = Gauge::default() => "weir_sub_batches_in_flight",
        /// Shards being read.
        pub shards_reading: Gauge = Gauge::default() => "weir_shards_reading",
        /// Shards read to their end after a split or merge.
        pub reshards: Counter = Counter::default() => "weir_reshards",
        /// Operator instances.
        pub parallelism: Gauge = Gauge::default() => "weir_parallelism",
        /// Grouping keys whose records arrive on more than one shard (sampled).
        pub keys_on_several_shards: Counter = Counter::default() => "weir_keys_on_several_shards",
        /// Results the sink cannot write (a Kinesis record's limits), sent to the dead-letter
        /// destination instead.
        pub results_refused: Counter = Counter::default() => "weir_results_refused",
        /// The event-time watermark passed to the operator instances, ms since the Unix epoch
        /// (absent before the first event time).
        pub watermark: Gauge = Gauge::default() => "weir_watermark_milliseconds",
        /// Switches to a new operator version (rollbacks included).
        pub operator_swaps: Counter = Counter::default() => "weir_operator_swaps",
        /// Switches back to the previous version after the new one trapped.
        pub operator_rollbacks: Counter = Counter::default() => "weir_operator_rollbacks",
        /// New operator versions not switched to, by reason.
        versions_refused: Family<RefusedLabel, Counter> = Family::default() => "weir_operator_versions_refused",
        /// Per instance, from the old instance's snapshot to the new one restored, in seconds.
        pub swap_pause: Histogram = Histogram::new(SWAP_PAUSE_BUCKETS) => "weir_swap_pause_seconds",
    }
    unexported |registry| {
        /// Checkpoints: completed, duration, size, age.
        pub checkpoints: CheckpointMetrics = CheckpointMetrics::register(registry),
        /// Leases (with `--lease-table`).
        pub leases: LeaseMetrics = LeaseMetrics::register(registry),
        /// Subscriptions (with `--efo-consumer`).
        pub fan_out: FanOutMetrics = FanOutMetrics::register(registry),
        /// A candidate shadowing the live version.
        pub shadow: ShadowMetrics = ShadowMetrics::register(registry),
        /// The Kinesis sink's series, once one is watched.
        sink: Arc<SinkCollector> = SinkCollector::register(registry),
        /// The operator instance slots' series, once a pooled engine is watched.
        slots: Arc<SlotsCollector> = SlotsCollector::register(registry),
        /// Every version refused, whatever the reason, for the summaries.
        all_versions_refused: Counter = Counter::default(),
        /// The shards seen, for the totals.
        shards: Mutex<BTreeSet<String>> = Mutex::default(),
        /// The instances seen, for the totals.
        instances: Mutex<BTreeSet<usize>> = Mutex::default(),
        /// The totals and time of the last report: the next one counts from there, across
        /// every pipeline of the process (a lease group's terms each run one).
        reported: Mutex<(Snapshot, Instant)> = Mutex::new((Snapshot::default(), Instant::now())),
        /// Where every series above is registered (put in place by `default`).
        registry: Registry = Registry::default(),
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(aws::AwsRetries));
        let metrics = Self::register(&mut registry);
        Self { registry, ..metrics }
    }
}

impl Metrics {
    /// `weir_late_records_total{missed}`: records that came after windows they belong to were
    /// emitted, by how many they missed (each also a dead letter).
    pub fn late_records(&self, lateness: weir_contract::Lateness) -> Counter {
        self.late_records.get_or_create(&MissedLabel { missed: lateness.missed() }).clone()
    }

    /// A new operator version was not run, for `reason` (a [`RefusedLabel`] reason).
    pub fn version_refused(&self, reason: &'static str) {
        self.versions_refused.get_or_create(&RefusedLabel { reason }).inc();
        self.all_versions_refused.inc();
    }

    /// New versions not run so far, all reasons.
    pub fn versions_refused(&self) -> u64 {
        self.all_versions_refused.get()
    }

    /// Totals now, the totals of the last report (or zeros), and the time since: for the next
    /// report, which then becomes the last.
    pub fn since_reported(&self) -> (Snapshot, Snapshot, std::time::Duration) {
        let now = self.snapshot();
        let Ok(mut reported) = self.reported.lock() else {
            return (now, Snapshot::default(), Default::default());
        };
        let (before, at) = std::mem::replace(&mut *reported, (now.clone(), Instant::now()));
        (now, before, at.elapsed())
    }

    /// The series of `shard`, created on first use.
    pub fn shard(&self, shard: &str) -> ShardMetrics {
        let label = ShardLabel { shard: shard.to_string() };
        if let Ok(mut shards) = self.shards.lock() {
            shards.insert(shard.to_string());
        }
        ShardMetrics {
            records_in: self.records_in.get_or_create(&label).clone(),
            dead_letters: self.dead_letters.get_or_create(&label).clone(),
            millis_behind_latest: self.millis_behind_latest.get_or_create(&label).clone(),
            read_throttles: self.read_throttles.get_or_create(&label).clone(),
            read_retries: self.read_retries.get_or_create(&label).clone(),
            iterator_renewals: self.iterator_renewals.get_or_create(&label).clone(),
        }
    }

    /// The series of operator instance `instance`, created on first use.
    pub fn instance(&self, instance: usize) -> InstanceMetrics {
        let label = InstanceLabel { instance: instance.to_string() };
        if let Ok(mut instances) = self.instances.lock() {
            instances.insert(instance);
        }
        InstanceMetrics {
            records_out: self.records_out.get_or_create(&label).clone(),
            operator_restarts: self.operator_restarts.get_or_create(&label).clone(),
        }
    }

    /// Export what the operator instance slots hold, read by `read` at each scrape.
    pub fn watch_instance_slots(&self, read: impl Fn() -> Option<SlotUsage> + Send + Sync + 'static) {
        self.slots.watch(read);
    }

    /// Export the Kinesis sink's counters (the first sink watched; later ones are ignored).
    pub fn watch_sink(&self, stats: Arc<WriterStats>) {
        self.sink.watch(stats);
    }

    /// The Kinesis sink's counters being watched, if any.
    pub fn watched_sink(&self) -> Option<Arc<WriterStats>> {
        self.sink.watched().cloned()
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_watched_sink_reports_its_counters_and_the_latency_it_measures() {
        let metrics = Metrics::default();
        assert!(!metrics.render().contains("weir_added_latency_seconds"), "no sink, no series");
        let stats = Arc::new(WriterStats::default());
        metrics.watch_sink(stats.clone());
        stats.records.store(7, std::sync::atomic::Ordering::Relaxed);
        let observe = stats.added_latency.get().expect("watching the sink observes its latency");
        observe(0.003);
        observe(0.2);
        let text = metrics.render();
        assert!(text.contains("weir_sink_records_total 7"), "{text}");
        assert!(text.contains("weir_added_latency_seconds_count 2"), "{text}");
        assert!(text.contains("weir_added_latency_seconds_bucket{le=\"0.005\"} 1"), "{text}");
    }

    #[test]
    fn aws_retries_are_exported_by_service() {
        let text = Metrics::default().render();
        for service in ["kinesis", "s3", "dynamodb"] {
            assert!(text.contains(&format!("weir_aws_retries_total{{service=\"{service}\"}} ")), "{text}");
        }
    }

    #[test]
    fn per_shard_series_are_exported_and_summed() {
        let metrics = Metrics::default();
        let a = metrics.shard("shardId-000000000000");
        let b = metrics.shard("shardId-000000000001");
        a.records_in.inc_by(5);
        b.records_in.inc_by(7);
        b.millis_behind_latest.set(1200);
        a.read_throttles.inc();
        let text = metrics.render();
        assert!(text.contains("weir_records_in_total{shard=\"shardId-000000000001\"} 7"), "{text}");
        assert!(text.contains("weir_millis_behind_latest{shard=\"shardId-000000000001\"} 1200"), "{text}");
        assert!(text.contains("weir_read_throttles_total{shard=\"shardId-000000000000\"} 1"), "{text}");
        let snap = metrics.snapshot();
        assert_eq!(snap.records_in, 12);
        assert_eq!(snap.furthest_behind, Some(("shardId-000000000001".into(), 1200)));
        let line = snap.summary(&Snapshot::default(), Duration::from_secs(1));
        assert!(line.contains("furthest behind shardId-000000000001 by 1200 ms"), "{line}");
        assert!(line.contains("read throttles 1"), "{line}");
    }
}
