//! Checkpoint series: how long the last checkpoints took, how large they are, how old the
//! newest is (the figures Flink's dashboards show as lastCheckpointDuration and
//! lastCheckpointSize), and the positions a restore found expired.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Buckets of [`CheckpointMetrics::duration`], in seconds: from the cut to the pointer written
/// (the wait for the sink's acknowledgements included).
pub const DURATION_BUCKETS: [f64; 12] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// The checkpoint series.
#[derive(Clone, Debug)]
pub struct CheckpointMetrics {
    /// `weir_checkpoints_total`: checkpoints completed.
    pub completed: Counter,
    /// `weir_checkpoint_failures_total`: attempts to write a checkpoint that failed (retried).
    pub failures: Counter,
    /// `weir_checkpoints_skipped_total`: intervals that passed while the previous checkpoint
    /// was still being written.
    pub skipped: Counter,
    /// `weir_checkpoint_duration_seconds`: from the cut to the checkpoint complete.
    pub duration: Histogram,
    /// `weir_checkpoint_size_bytes`: the last checkpoint's size.
    pub size: Gauge,
    /// `weir_last_checkpoint_id`: the last checkpoint's number.
    pub last_id: Gauge,
    /// `weir_checkpoint_positions_expired_total`: shard positions of the restored checkpoint
    /// older than the stream keeps (read from the oldest record instead).
    pub expired_positions: Counter,
    last_completed_ms: Arc<AtomicI64>,
}

impl CheckpointMetrics {
    /// The series, registered in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            completed: Counter::default(),
            failures: Counter::default(),
            skipped: Counter::default(),
            duration: Histogram::new(DURATION_BUCKETS),
            size: Gauge::default(),
            last_id: Gauge::default(),
            expired_positions: Counter::default(),
            last_completed_ms: Arc::new(AtomicI64::new(0)),
        };
        registry.register("weir_checkpoints", "Checkpoints completed", metrics.completed.clone());
        registry.register(
            "weir_checkpoint_failures",
            "Attempts to write a checkpoint that failed and were retried",
            metrics.failures.clone(),
        );
        registry.register(
            "weir_checkpoints_skipped",
            "Checkpoint intervals that passed while the previous checkpoint was still being written",
            metrics.skipped.clone(),
        );
        registry.register(
            "weir_checkpoint_duration_seconds",
            "From the cut to the checkpoint complete (sink acknowledgements and the write)",
            metrics.duration.clone(),
        );
        registry.register("weir_checkpoint_size_bytes", "Size of the last checkpoint", metrics.size.clone());
        registry.register(
            "weir_last_checkpoint_id",
            "Number of the last checkpoint",
            metrics.last_id.clone(),
        );
        registry.register(
            "weir_checkpoint_positions_expired",
            "Shard positions of the restored checkpoint older than the stream keeps",
            metrics.expired_positions.clone(),
        );
        registry.register_collector(Box::new(Age(Arc::clone(&metrics.last_completed_ms))));
        metrics
    }

    /// A checkpoint completed now.
    pub fn completed_now(&self, id: u64, bytes: u64, took: std::time::Duration) {
        self.completed.inc();
        self.duration.observe(took.as_secs_f64());
        self.size.set(bytes as i64);
        self.last_id.set(id as i64);
        self.last_completed_ms.store(crate::clock::now_ms(), Relaxed);
    }
}

/// `weir_last_checkpoint_age_seconds`, computed when scraped.
#[derive(Debug)]
struct Age(Arc<AtomicI64>);

impl Collector for Age {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let last = self.0.load(Relaxed);
        if last == 0 {
            return Ok(());
        }
        let age = ConstGauge::new((crate::clock::now_ms() - last).max(0) as f64 / 1e3);
        age.encode(encoder.encode_descriptor(
            "weir_last_checkpoint_age_seconds",
            "Seconds since the last checkpoint completed",
            None,
            age.metric_type(),
        )?)
    }
}
