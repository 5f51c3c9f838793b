//! The Kinesis sink's series: its writer's counters (kept by `weir-kinesis`, read at each
//! scrape) and the added latency it measures.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use weir_kinesis::WriterStats;

/// Buckets of `weir_added_latency_seconds`, in seconds: fine below 10 ms, where the goal is.
pub const ADDED_LATENCY_BUCKETS: [f64; 16] =
    [0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// The Kinesis sink's counters, read at each scrape, and the latency it measures; nothing is
/// exported before a sink is watched.
#[derive(Debug)]
pub struct SinkCollector {
    stats: OnceLock<Arc<WriterStats>>,
    added_latency: Histogram,
}

impl SinkCollector {
    /// A collector registered in `registry`, watching no sink yet.
    pub fn register(registry: &mut Registry) -> Arc<Self> {
        let sink =
            Arc::new(Self { stats: OnceLock::new(), added_latency: Histogram::new(ADDED_LATENCY_BUCKETS) });
        registry.register_collector(Box::new(Arc::clone(&sink)));
        sink
    }

    /// Export `stats` (the first sink watched; later ones are ignored).
    pub fn watch(&self, stats: Arc<WriterStats>) {
        let histogram = self.added_latency.clone();
        let _ = stats.added_latency.set(Box::new(move |seconds| histogram.observe(seconds)));
        let _ = self.stats.set(stats);
    }

    /// The sink's counters being watched, if any.
    pub fn watched(&self) -> Option<&Arc<WriterStats>> {
        self.stats.get()
    }
}

impl Collector for SinkCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(stats) = self.stats.get() else { return Ok(()) };
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
