//! What the runtime counts, per shard where it matters: exported in the Prometheus text format
//! at `--metrics-addr` ([`server`]), and every `--stats-interval` either summarised in the log
//! or written as CloudWatch Embedded Metric Format lines ([`emf`]).
//!
//! Names follow Prometheus conventions (`weir_<noun>_total` for counters, a `shard` label for
//! per-shard series, an `instance` label for per-operator-instance series).

pub mod checkpoint;
pub mod emf;
pub mod lease;
pub mod server;

pub use server::serve;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use weir_kinesis::WriterStats;

pub use checkpoint::CheckpointMetrics;
use emf::EmfFormat;
pub use lease::LeaseMetrics;

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

/// The runtime's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    records_in: Family<ShardLabel, Counter>,
    records_out: Family<InstanceLabel, Counter>,
    dead_letters: Family<ShardLabel, Counter>,
    operator_restarts: Family<InstanceLabel, Counter>,
    millis_behind_latest: Family<ShardLabel, Gauge>,
    read_throttles: Family<ShardLabel, Counter>,
    read_retries: Family<ShardLabel, Counter>,
    iterator_renewals: Family<ShardLabel, Counter>,
    late_records: Family<MissedLabel, Counter>,
    /// `weir_batches_total`: source batches processed (split among the instances by key).
    pub batches: Counter,
    /// `weir_shards_reading`: shards being read now.
    pub shards_reading: Gauge,
    /// `weir_reshards_total`: shards read to their end (after a split or merge).
    pub reshards: Counter,
    /// `weir_results_refused_total`: results the sink cannot write (a Kinesis record's limits),
    /// sent to the dead-letter destination instead.
    pub results_refused: Counter,
    /// `weir_parallelism`: operator instances.
    pub parallelism: Gauge,
    /// `weir_keys_on_several_shards_total`: grouping keys found on more than one shard (sampled).
    pub keys_on_several_shards: Counter,
    /// `weir_watermark_milliseconds`: the event-time watermark passed to the instances (ms since
    /// the Unix epoch; absent before the first event time).
    pub watermark: Gauge,
    /// `weir_operator_swaps_total`: switches to a new operator version (rollbacks included).
    pub operator_swaps: Counter,
    /// `weir_operator_rollbacks_total`: switches back after a new version trapped.
    pub operator_rollbacks: Counter,
    /// `weir_operator_versions_refused_total`: new versions not switched to (download, digest,
    /// compile, init or restore failed).
    pub versions_refused: Counter,
    /// `weir_swap_pause_seconds`: per instance, from the old instance's snapshot to the new one
    /// restored.
    pub swap_pause: Histogram,
    /// Checkpoints: completed, duration, size, age.
    pub checkpoints: CheckpointMetrics,
    /// Leases (with `--lease-table`).
    pub leases: LeaseMetrics,
    shards: Mutex<BTreeSet<String>>,
    instances: Mutex<BTreeSet<usize>>,
    sink: Arc<SinkCollector>,
}

/// Buckets of `weir_added_latency_seconds`, in seconds: fine below 10 ms, where the goal is.
pub const ADDED_LATENCY_BUCKETS: [f64; 16] =
    [0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// The Kinesis sink's counters, read at each scrape, and the latency it measures.
#[derive(Debug)]
struct SinkCollector {
    stats: OnceLock<Arc<WriterStats>>,
    added_latency: Histogram,
}

impl Default for SinkCollector {
    fn default() -> Self {
        Self { stats: OnceLock::new(), added_latency: Histogram::new(ADDED_LATENCY_BUCKETS) }
    }
}

impl Collector for SinkCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(stats) = self.stats.get() else { return Ok(()) };
        use std::sync::atomic::Ordering::Relaxed;
        let records = ConstCounter::new(stats.records.load(Relaxed));
        records.encode(encoder.encode_descriptor(
            "weir_sink_records",
            "Records written to the output stream",
            None,
            records.metric_type(),
        )?)?;
        let retries = ConstCounter::new(stats.retries.load(Relaxed));
        retries.encode(encoder.encode_descriptor(
            "weir_sink_retries",
            "PutRecords entries sent again after a partial failure or throttling",
            None,
            retries.metric_type(),
        )?)?;
        self.added_latency.encode(encoder.encode_descriptor(
            "weir_added_latency_seconds",
            "From the read of a batch to the first PutRecords call carrying a result of it",
            None,
            self.added_latency.metric_type(),
        )?)?;
        Ok(())
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let records_in = Family::default();
        let records_out = Family::default();
        let dead_letters = Family::default();
        let operator_restarts = Family::default();
        let millis_behind_latest = Family::default();
        let read_throttles = Family::default();
        let read_retries = Family::default();
        let iterator_renewals = Family::default();
        let late_records = Family::default();
        let batches = Counter::default();
        let shards_reading = Gauge::default();
        let reshards = Counter::default();
        let parallelism = Gauge::default();
        let results_refused = Counter::default();
        let keys_on_several_shards = Counter::default();
        let watermark = Gauge::default();
        let operator_swaps = Counter::default();
        let operator_rollbacks = Counter::default();
        let versions_refused = Counter::default();
        let swap_pause = Histogram::new(SWAP_PAUSE_BUCKETS);
        let sink = Arc::new(SinkCollector::default());
        registry.register("weir_records_in", "Records read, per shard", records_in.clone());
        registry.register(
            "weir_records_out",
            "Records emitted by the operator, per instance",
            records_out.clone(),
        );
        registry.register(
            "weir_dead_letters",
            "Records sent to the dead-letter destination",
            dead_letters.clone(),
        );
        registry.register(
            "weir_operator_restarts",
            "Operator instances replaced after a trap or failure, per instance",
            operator_restarts.clone(),
        );
        registry.register(
            "weir_millis_behind_latest",
            "How far the last read was behind the shard's newest record, ms",
            millis_behind_latest.clone(),
        );
        registry.register(
            "weir_read_throttles",
            "GetRecords calls refused for throughput",
            read_throttles.clone(),
        );
        registry.register(
            "weir_read_retries",
            "GetRecords calls retried after a transient failure",
            read_retries.clone(),
        );
        registry.register(
            "weir_iterator_renewals",
            "Expired shard iterators replaced after the last sequence number read",
            iterator_renewals.clone(),
        );
        registry.register(
            "weir_late_records",
            "Records behind the watermark that missed windows already emitted (missed=all: late, counted in none; some: partly late, counted in the open ones)",
            late_records.clone(),
        );
        registry.register("weir_batches", "Source batches processed", batches.clone());
        registry.register("weir_shards_reading", "Shards being read", shards_reading.clone());
        registry.register(
            "weir_reshards",
            "Shards read to their end after a split or merge",
            reshards.clone(),
        );
        registry.register("weir_parallelism", "Operator instances", parallelism.clone());
        registry.register(
            "weir_keys_on_several_shards",
            "Grouping keys whose records arrive on more than one shard (sampled)",
            keys_on_several_shards.clone(),
        );
        registry.register(
            "weir_results_refused",
            "Results the sink cannot write, sent to the dead-letter destination",
            results_refused.clone(),
        );
        registry.register(
            "weir_watermark_milliseconds",
            "The event-time watermark passed to the operator instances, ms since the Unix epoch",
            watermark.clone(),
        );
        registry.register(
            "weir_operator_swaps",
            "Switches to a new operator version",
            operator_swaps.clone(),
        );
        registry.register(
            "weir_operator_rollbacks",
            "Switches back to the previous version after the new one trapped",
            operator_rollbacks.clone(),
        );
        registry.register(
            "weir_operator_versions_refused",
            "New operator versions not switched to",
            versions_refused.clone(),
        );
        registry.register(
            "weir_swap_pause_seconds",
            "Per instance, from the old instance's snapshot to the new one restored",
            swap_pause.clone(),
        );
        registry.register_collector(Box::new(Arc::clone(&sink)));
        let checkpoints = CheckpointMetrics::register(&mut registry);
        let leases = LeaseMetrics::register(&mut registry);
        Self {
            checkpoints,
            leases,
            registry,
            records_in,
            records_out,
            dead_letters,
            operator_restarts,
            millis_behind_latest,
            read_throttles,
            read_retries,
            iterator_renewals,
            late_records,
            batches,
            shards_reading,
            reshards,
            parallelism,
            results_refused,
            keys_on_several_shards,
            watermark,
            operator_swaps,
            operator_rollbacks,
            versions_refused,
            swap_pause,
            shards: Mutex::default(),
            instances: Mutex::default(),
            sink,
        }
    }
}

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
    /// The shard furthest behind, and by how many ms.
    pub furthest_behind: Option<(String, i64)>,
}

impl Metrics {
    /// `weir_late_records_total{missed}`: records that came after windows they belong to were
    /// emitted, by how many they missed (each also a dead letter).
    pub fn late_records(&self, lateness: weir_contract::Lateness) -> Counter {
        self.late_records.get_or_create(&MissedLabel { missed: lateness.missed() }).clone()
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

    /// Export the counters of the Kinesis sink too.
    pub fn watch_sink(&self, stats: Arc<WriterStats>) {
        let histogram = self.sink.added_latency.clone();
        let _ = stats.added_latency.set(Box::new(move |seconds| histogram.observe(seconds)));
        let _ = self.sink.stats.set(stats);
    }

    /// The Kinesis sink's counters being watched, if any.
    pub fn watched_sink(&self) -> Option<Arc<WriterStats>> {
        self.sink.stats.get().cloned()
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

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
        if let Some(stats) = self.sink.stats.get() {
            snap.sink_retries = stats.retries.load(std::sync::atomic::Ordering::Relaxed);
            snap.sink_records = stats.records.load(std::sync::atomic::Ordering::Relaxed);
        }
        snap.operator_swaps = self.operator_swaps.get();
        snap.operator_rollbacks = self.operator_rollbacks.get();
        snap.versions_refused = self.versions_refused.get();
        snap.shards_reading = self.shards_reading.get();
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
        line
    }
}

#[cfg(test)]
mod tests {
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
