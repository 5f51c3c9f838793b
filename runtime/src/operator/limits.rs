//! Resource limits of one operator instance, in one place.

use std::time::Duration;

/// What one operator instance may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory an instance may grow to, in bytes, all its memories together.
    pub max_memory_bytes: usize,
    /// Wall-clock time one call (a batch, a tick, a snapshot) may run before it is interrupted,
    /// or None for no limit. Enforced with wasmtime's epoch interruption, so the granularity is
    /// [`EPOCH_TICK`]. The checks it compiles into every loop of the operator cost about a
    /// third of the operator's speed on the reference workload (see BENCHMARKS.md): turn it
    /// off only for operators you trust not to loop forever.
    pub max_call_time: Option<Duration>,
    /// Bytes of results (keys and data) one call may return: more fails the call, so that an
    /// operator flooding its output is handled like one that traps (its record is isolated and
    /// dead-lettered) instead of flooding the sink.
    pub max_output_bytes: usize,
}

/// Core module instances one operator instance may make. A Rust component instantiates 3 or
/// 4 (the operator, the WASI adapter, shims); one made by componentize-py 0.25 between 33 and
/// 40 (CPython and each C library it links are core modules of their own, with the adapter
/// and shims). The bound stops a component that instantiates without end.
pub const MAX_CORE_INSTANCES: usize = 64;

/// Linear memories one operator instance may have (their sum is capped by
/// `max_memory_bytes`).
pub const MAX_MEMORIES: usize = 16;

/// Tables one operator instance may have (each bounded by its own maximum).
pub const MAX_TABLES: usize = 64;

/// How often the engine's epoch advances: the resolution of `max_call_time`. Epoch checks cost
/// far less than fuel metering, and a 10 ms resolution is plenty for a limit meant to stop
/// runaway loops.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

impl Default for Limits {
    fn default() -> Self {
        Self {
            // Window state of thousands of keys fits in a few MiB; 256 MiB leaves room for
            // large batches and still stops a leak long before it hurts the host.
            max_memory_bytes: 256 << 20,
            // A batch of 1,024 records takes well under 1 ms; 5 s is a runaway loop.
            max_call_time: Some(Duration::from_secs(5)),
            // A batch of 1,024 trades gives at most about 100 KiB of results, the end of the
            // input of 1,000 tickers about 1 MiB.
            max_output_bytes: 64 << 20,
        }
    }
}

impl Limits {
    /// `max_call_time` in epoch ticks (at least one), if there is a limit.
    pub fn deadline_ticks(&self) -> Option<u64> {
        self.max_call_time.map(|t| (t.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64)
    }
}
