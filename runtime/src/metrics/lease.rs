//! Lease series of a `weir run --lease-table` worker: how many it holds, how leases came and
//! went (taken free, taken from a worker that stopped renewing, given up, lost), and how long a
//! renewal takes.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Buckets of [`LeaseMetrics::renewal`], in seconds.
pub const RENEWAL_BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// The lease series.
#[derive(Clone, Debug)]
pub struct LeaseMetrics {
    /// `weir_leases_held`: leases this worker holds.
    pub held: Gauge,
    /// `weir_leases_taken_total`: free leases taken (new shards, given up by another worker).
    pub taken: Counter,
    /// `weir_leases_stolen_total`: leases taken from a worker that stopped renewing.
    pub stolen: Counter,
    /// `weir_leases_released_total`: leases given up (rebalance, stop, shard finished).
    pub released: Counter,
    /// `weir_leases_lost_total`: leases found taken by another worker, or dropped when this
    /// worker could not renew in time.
    pub lost: Counter,
    /// `weir_lease_renewal_seconds`: one renewal (every lease of the worker at once).
    pub renewal: Histogram,
    /// `weir_lease_table_errors_total`: calls to the lease table that failed (tried again).
    pub errors: Counter,
}

impl LeaseMetrics {
    /// The series, registered in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            held: Gauge::default(),
            taken: Counter::default(),
            stolen: Counter::default(),
            released: Counter::default(),
            lost: Counter::default(),
            renewal: Histogram::new(RENEWAL_BUCKETS),
            errors: Counter::default(),
        };
        registry.register("weir_leases_held", "Leases this worker holds", metrics.held.clone());
        registry.register(
            "weir_leases_taken",
            "Free leases taken (new shards, or given up by another worker)",
            metrics.taken.clone(),
        );
        registry.register(
            "weir_leases_stolen",
            "Leases taken from a worker that stopped renewing",
            metrics.stolen.clone(),
        );
        registry.register(
            "weir_leases_released",
            "Leases given up (rebalance, stop, shard read to its end)",
            metrics.released.clone(),
        );
        registry.register(
            "weir_leases_lost",
            "Leases found taken by another worker, or dropped when renewal failed",
            metrics.lost.clone(),
        );
        registry.register(
            "weir_lease_renewal_seconds",
            "One renewal of every lease of this worker",
            metrics.renewal.clone(),
        );
        registry.register(
            "weir_lease_table_errors",
            "Calls to the lease table that failed and were tried again",
            metrics.errors.clone(),
        );
        metrics
    }
}
