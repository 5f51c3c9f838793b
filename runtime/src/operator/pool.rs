//! Instance slots kept ready between uses: wasmtime's pooling allocator, sized for how many
//! operator instances a run holds at once.
//!
//! A swap, a restart or a shadow candidate makes new instances while the stream flows. Made on
//! demand, each new instance maps fresh linear memory, and restoring 1,000 keys of window state
//! into it faults in every page it writes while the instance is paused. From a pool, a new
//! instance reuses a slot whose memory is mapped, the pages written in its first
//! [`KEEP_RESIDENT`] bytes reset in place when the previous instance was dropped: the swap
//! bench's pause fell by a quarter to a half at the median (BENCHMARKS.md). The slots are
//! virtual memory reserved once per process; where that reservation fails (a small
//! address-space limit), the engine falls back to on-demand allocation and says so.

use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::Limits;
use super::limits::{MAX_CORE_INSTANCES, MAX_MEMORIES, MAX_TABLES};

/// Bytes at the start of each slot's linear memory reset in place (zeroed, or copied back from
/// the component's image) when its instance is dropped, rather than decommitted, so that the
/// next instance finds them mapped. wasmtime resets only the pages that were written, so what
/// stays resident is far less (after the swap bench, 16 KiB for the Rust sliding-window-max,
/// 104-136 KiB for the Python and JavaScript ones, by wasmtime's count). 8 MiB gave the
/// shortest pause of 0, 1 and 8 MiB in the swap bench (one run each, BENCHMARKS.md).
pub const KEEP_RESIDENT: usize = 8 << 20;

/// Elements a table slot holds. wasmtime's default is 20,000, and a component whose table
/// starts larger cannot be instantiated from the pool, while on demand only the module's own
/// maximum applies; a table slot costs 8 bytes of address space per element.
const TABLE_ELEMENTS: usize = 100_000;

/// Bytes of each slot's tables kept resident between uses, like [`KEEP_RESIDENT`].
const TABLE_KEEP_RESIDENT: usize = 1 << 20;

/// How many operator instances the engine keeps slots for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstancePool {
    slots: u32,
}

impl InstancePool {
    /// Slots for a run of `parallelism` instances: each instance, its replacement during a swap
    /// or a restart, a shadow candidate's instance and its replacement, and four for loading
    /// and checking new versions.
    pub fn for_parallelism(parallelism: usize) -> Self {
        Self::with_slots(parallelism.saturating_mul(4).saturating_add(4))
    }

    /// Exactly `slots` instances (at least one).
    pub fn with_slots(slots: usize) -> Self {
        Self { slots: u32::try_from(slots.max(1)).unwrap_or(u32::MAX) }
    }

    /// How many instances can exist at once.
    pub fn slots(&self) -> u32 {
        self.slots
    }

    /// The allocation strategy for `limits`. Every slot can hold a component of as many core
    /// instances, memories and tables as one instance may have ([`MAX_CORE_INSTANCES`],
    /// [`MAX_MEMORIES`], [`MAX_TABLES`]); in all, a slot has
    /// room for the most any component seen needs (componentize-py's: 40 core instances,
    /// one memory, two tables) with a margin, so that a pool holding only Python instances is
    /// not exhausted before its slots are.
    pub(super) fn strategy(&self, limits: &Limits) -> InstanceAllocationStrategy {
        let slots = self.slots;
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(slots)
            .total_core_instances(slots.saturating_mul(MAX_CORE_INSTANCES as u32))
            .total_memories(slots.saturating_mul(2))
            .total_tables(slots.saturating_mul(4))
            .max_core_instances_per_component(MAX_CORE_INSTANCES as u32)
            .max_memories_per_component(MAX_MEMORIES as u32)
            .max_tables_per_component(MAX_TABLES as u32)
            .table_elements(TABLE_ELEMENTS)
            .table_keep_resident(TABLE_KEEP_RESIDENT)
            // The store's limiter caps an instance's memories together; a slot is its cap (a
            // 32-bit memory cannot exceed 4 GiB, the slot's reservation).
            .max_memory_size(limits.max_memory_bytes.min(4 << 30))
            .linear_memory_keep_resident(KEEP_RESIDENT);
        InstanceAllocationStrategy::Pooling(pool)
    }

    /// What `engine`'s slots hold now (None if it does not pool instances).
    pub(super) fn usage(&self, engine: &Engine) -> Option<PoolUsage> {
        let metrics = engine.pooling_allocator_metrics()?;
        Some(PoolUsage {
            slots: self.slots,
            instances: metrics.component_instances(),
            resident_bytes: metrics
                .unused_memory_bytes_resident()
                .saturating_add(metrics.unused_table_bytes_resident()),
        })
    }
}

/// What a pool's slots hold at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolUsage {
    /// Slots reserved.
    pub slots: u32,
    /// Operator instances in them.
    pub instances: u64,
    /// Bytes of linear memory and tables the empty slots keep resident.
    pub resident_bytes: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_gets_four_slots_per_instance_and_four_more() {
        assert_eq!(InstancePool::for_parallelism(1).slots(), 8);
        assert_eq!(InstancePool::for_parallelism(2).slots(), 12);
        assert_eq!(InstancePool::with_slots(0).slots(), 1);
    }
}
