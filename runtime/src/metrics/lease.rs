//! Lease series of a `weir run --lease-table` worker: how many it holds, how leases came and
//! went (taken free, taken from a worker that stopped renewing, given up, lost), and how long a
//! renewal takes.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

/// Buckets of [`LeaseMetrics::renewal`], in seconds.
pub const RENEWAL_BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

crate::series! {
    /// The lease series.
    #[derive(Clone, Debug)]
    pub struct LeaseMetrics {
        /// Leases this worker holds.
        pub held: Gauge = Gauge::default() => "weir_leases_held",
        /// Free leases taken (new shards, or given up by another worker).
        pub taken: Counter = Counter::default() => "weir_leases_taken",
        /// Leases taken from a worker that stopped renewing.
        pub stolen: Counter = Counter::default() => "weir_leases_stolen",
        /// Leases given up (rebalance, stop, shard read to its end).
        pub released: Counter = Counter::default() => "weir_leases_released",
        /// Leases found taken by another worker, or dropped when renewal failed.
        pub lost: Counter = Counter::default() => "weir_leases_lost",
        /// One renewal of every lease of this worker, in seconds.
        pub renewal: Histogram = Histogram::new(RENEWAL_BUCKETS) => "weir_lease_renewal_seconds",
        /// Calls to the lease table that failed and were tried again.
        pub errors: Counter = Counter::default() => "weir_lease_table_errors",
    }
}
