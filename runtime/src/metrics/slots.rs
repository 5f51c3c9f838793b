//! The operator instance slots' series (`--instance-slots`): how many are reserved, how many
//! hold an instance, and the memory the empty ones keep resident, read at each scrape.

use std::sync::{Arc, OnceLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// What the instance slots hold at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlotUsage {
    /// Slots reserved.
    pub slots: u64,
    /// Slots holding an operator instance.
    pub in_use: u64,
    /// Linear memory and table bytes kept resident by slots holding no instance.
    pub resident_bytes: u64,
}

/// Where the usage is read from, once a pooled engine is watched.
type Read = Box<dyn Fn() -> Option<SlotUsage> + Send + Sync>;

/// The slots' series; nothing is exported before a pooled engine is watched.
pub struct SlotsCollector {
    read: OnceLock<Read>,
}

impl std::fmt::Debug for SlotsCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotsCollector").field("watched", &self.read.get().is_some()).finish()
    }
}

impl SlotsCollector {
    /// A collector registered in `registry`, watching nothing yet.
    pub fn register(registry: &mut Registry) -> Arc<Self> {
        let slots = Arc::new(Self { read: OnceLock::new() });
        registry.register_collector(Box::new(Arc::clone(&slots)));
        slots
    }

    /// Export what `read` returns at each scrape (the first one watched; later ones are
    /// ignored).
    pub fn watch(&self, read: impl Fn() -> Option<SlotUsage> + Send + Sync + 'static) {
        let _ = self.read.set(Box::new(read));
    }
}

impl Collector for SlotsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(usage) = self.read.get().and_then(|read| read()) else { return Ok(()) };
        for (name, help, value) in [
            ("weir_instance_slots", "Operator instance slots reserved (--instance-slots)", usage.slots),
            ("weir_instance_slots_in_use", "Instance slots holding an operator instance", usage.in_use),
            (
                "weir_instance_slots_resident_bytes",
                "Memory kept resident by instance slots holding no instance, for the next one",
                usage.resident_bytes,
            ),
        ] {
            let gauge = ConstGauge::new(value as i64);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}
