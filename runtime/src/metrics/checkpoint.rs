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

crate::series! {
    /// The checkpoint series.
    #[derive(Clone, Debug)]
    pub struct CheckpointMetrics {
        /// Checkpoints completed.
        pub completed: Counter = Counter::default() => "weir_checkpoints",
        /// Attempts to write a checkpoint that failed and were retried.
        pub failures: Counter = Counter::default() => "weir_checkpoint_failures",
        /// Checkpoint intervals that passed while the previous checkpoint was still being
        /// written.
        pub skipped: Counter = Counter::default() => "weir_checkpoints_skipped",
        /// From the cut to the checkpoint complete (sink acknowledgements and the write), in
        /// seconds.
        pub duration: Histogram = Histogram::new(DURATION_BUCKETS) => "weir_checkpoint_duration_seconds",
        /// Size of the last checkpoint.
        pub size: Gauge = Gauge::default() => "weir_checkpoint_size_bytes",
        /// Number of the last checkpoint.
        pub last_id: Gauge = Gauge::default() => "weir_last_checkpoint_id",
        /// Shard positions of the restored checkpoint older than the stream keeps (read from
        /// the oldest record instead).
        pub expired_positions: Counter = Counter::default() => "weir_checkpoint_positions_expired",
    }
    unexported |registry| {
        /// When the last checkpoint completed (ms since the Unix epoch; 0: none yet), for
        /// `weir_last_checkpoint_age_seconds`, computed when scraped.
        last_completed_ms: Arc<AtomicI64> = Age::register(registry),
    }
}

impl CheckpointMetrics {
    /// A checkpoint completed now.
    pub fn completed_now(&self, id: u64, bytes: u64, took: std::time::Duration) {
        self.completed.inc();
        self.duration.observe(took.as_secs_f64());
        self.size.set(bytes as i64);
        self.last_id.set(id as i64);
        self.last_completed_ms.store(crate::clock::now_ms(), Relaxed);
    }

    /// Milliseconds since the last checkpoint completed; None before the first.
    pub fn age_ms(&self) -> Option<i64> {
        age_ms(&self.last_completed_ms)
    }
}

/// Milliseconds since `last_completed_ms`; None while it is 0 (no checkpoint yet).
fn age_ms(last_completed_ms: &AtomicI64) -> Option<i64> {
    match last_completed_ms.load(Relaxed) {
        0 => None,
        last => Some((crate::clock::now_ms() - last).max(0)),
    }
}

/// `weir_last_checkpoint_age_seconds`, computed when scraped.
#[derive(Debug)]
struct Age(Arc<AtomicI64>);

impl Age {
    /// The time of the last checkpoint, its age registered in `registry`.
    fn register(registry: &mut Registry) -> Arc<AtomicI64> {
        let last_completed_ms = Arc::new(AtomicI64::new(0));
        registry.register_collector(Box::new(Age(Arc::clone(&last_completed_ms))));
        last_completed_ms
    }
}

impl Collector for Age {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(ms) = age_ms(&self.0) else { return Ok(()) };
        let age = ConstGauge::new(ms as f64 / 1e3);
        age.encode(encoder.encode_descriptor(
            "weir_last_checkpoint_age_seconds",
            "Seconds since the last checkpoint completed",
            None,
            age.metric_type(),
        )?)
    }
}
