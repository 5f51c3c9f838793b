//! Shadow deploy series: a candidate version run beside the live one on the same records, the
//! input records both processed, their outputs that agreed, and the differences by kind.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

/// The label of `weir_shadow_differences_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct KindLabel {
    /// `only-live`, `only-candidate`, `different` (data), `refused` (an input record the
    /// live version accepted).
    pub kind: &'static str,
}

crate::series! {
    /// The shadow series.
    #[derive(Clone, Debug)]
    pub struct ShadowMetrics {
        /// Candidate instances running beside the live ones now.
        pub active: Gauge = Gauge::default() => "weir_shadow_instances",
        /// Input records both the live version and the candidate processed, outputs compared.
        pub records_compared: Counter = Counter::default() => "weir_shadow_records_compared",
        /// Output records the candidate wrote exactly as the live version did.
        pub outputs_equal: Counter = Counter::default() => "weir_shadow_outputs_equal",
        /// Output records (or refused input records) where the candidate differs, by kind.
        pub differences: Family<KindLabel, Counter> = Family::default() => "weir_shadow_differences",
        /// Candidate instances stopped (they trapped, refused records, fell behind or could
        /// not take the state).
        pub stopped: Counter = Counter::default() => "weir_shadow_stopped",
    }
    unexported |_registry| {
        /// Every difference, whatever its kind, for the summaries.
        all_differences: Counter = Counter::default(),
    }
}

impl ShadowMetrics {
    /// Count `n` differences of the kind labelled `kind`.
    pub fn differ(&self, kind: &'static str, n: u64) {
        self.differences.get_or_create(&KindLabel { kind }).inc_by(n);
        self.all_differences.inc_by(n);
    }

    /// Differences so far, all kinds.
    pub fn total_differences(&self) -> u64 {
        self.all_differences.get()
    }
}
