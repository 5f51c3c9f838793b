//! One operator instance: its store (memory, limits, a WASI context that grants nothing) and
//! typed calls into it. A trapped instance is never entered again; the store is dropped and a
//! new one made (see [`super::runner`]).

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use weir_contract::{Grouping, KeyedStates, Output, OwnedBatch, Rejection};

use super::bindings::{OperatorComponent, OperatorComponentPre, wit};
use super::{CallError, Limits, LoadError};

/// How much of an operator's standard error is kept for reports (panic messages, mostly).
const STDERR_CAPTURE_BYTES: usize = 64 << 10;

/// Everything a store holds for one instance.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: MemoryCap,
    stderr: MemoryOutputPipe,
}

/// Linear memory grew past the instance's limit: the trap's cause, so that it is reported as
/// the limit rather than as a generic growth failure.
#[derive(Debug, thiserror::Error)]
#[error("growing memory to {desired} bytes in all exceeds the limit of {limit} bytes")]
struct MemoryLimitExceeded {
    desired: usize,
    limit: usize,
}

/// The store's resource limiter: linear memory capped at `max_bytes` in all (growing past it
/// traps, with [`MemoryLimitExceeded`] as the cause), tables bounded by their own maximum, and
/// a bounded number of core instances, memories and tables ([`limits`](super::limits)): a
/// component made by componentize-py or componentize-js instantiates several core modules
/// (the language runtime, libc, the WASI adapter, the bindings), each maybe with a memory of
/// its own, so the cap is on their sum.
struct MemoryCap {
    max_bytes: usize,
    /// Bytes of linear memory of every memory of the instance, as last grown.
    used: usize,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.used.saturating_sub(current).saturating_add(desired);
        if total > self.max_bytes {
            return Err(wasmtime::Error::new(MemoryLimitExceeded { desired: total, limit: self.max_bytes }));
        }
        let allowed = maximum.is_none_or(|max| desired <= max);
        if allowed {
            self.used = total;
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(maximum.is_none_or(|max| desired <= max))
    }

    fn instances(&self) -> usize {
        super::limits::MAX_CORE_INSTANCES
    }

    fn memories(&self) -> usize {
        super::limits::MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        super::limits::MAX_TABLES
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// A live operator instance.
pub struct Instance {
    store: Store<HostState>,
    bindings: OperatorComponent,
    limits: Limits,
    /// An empty batch to swap with the one being lent to a call.
    scratch: wit::Batch,
}

impl Instance {
    pub(super) fn new(
        pre: &OperatorComponentPre<HostState>,
        limits: Limits,
        settings: &[(String, String)],
        origin: &str,
    ) -> Result<Self, LoadError> {
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE_BYTES);
        // No preopened folders, no environment, no arguments, no network; stdin empty, stdout
        // discarded. The clock and random interfaces stay linked (std imports them) but the
        // contract gives operators no reason to use them.
        let wasi = WasiCtxBuilder::new().stderr(stderr.clone()).build();
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            limits: MemoryCap { max_bytes: limits.max_memory_bytes, used: 0 },
            stderr,
        };
        let mut store = Store::new(pre.engine(), state);
        store.limiter(|s| &mut s.limits);
        if let Some(ticks) = limits.deadline_ticks() {
            store.set_epoch_deadline(ticks);
        }
        let bindings = pre
            .instantiate(&mut store)
            .map_err(|error| LoadError::Instantiate { origin: origin.to_string(), error })?;
        let mut instance = Self { store, bindings, limits, scratch: empty_batch() };
        instance.call(|b, s| b.weir_operator_operator().call_init(s, settings)).map_err(|e| {
            LoadError::Init {
                origin: origin.to_string(),
                message: match e {
                    CallError::Failed(message) => message,
                    CallError::Trap(what) => what,
                },
            }
        })?;
        Ok(instance)
    }

    /// Run one call under the CPU deadline, turning a trap into [`CallError::Trap`] and an
    /// operator error into [`CallError::Failed`].
    fn call<T>(
        &mut self,
        f: impl FnOnce(&OperatorComponent, &mut Store<HostState>) -> wasmtime::Result<Result<T, String>>,
    ) -> Result<T, CallError> {
        if let Some(ticks) = self.limits.deadline_ticks() {
            self.store.set_epoch_deadline(ticks);
        }
        match f(&self.bindings, &mut self.store) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(message)) => Err(CallError::Failed(message)),
            Err(e) => Err(CallError::Trap(self.describe_trap(&e))),
        }
    }

    fn describe_trap(&self, error: &wasmtime::Error) -> String {
        let stderr = panic_message(&String::from_utf8_lossy(&self.store.data().stderr.contents()));
        let what = match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => {
                format!(
                    "ran longer than its CPU limit of {:?} per call",
                    self.limits.max_call_time.unwrap_or_default()
                )
            }
            _ if error.is::<MemoryLimitExceeded>() => {
                format!("exceeded its memory limit of {} MiB", self.limits.max_memory_bytes >> 20)
            }
            Some(trap) => format!("trapped: {trap}"),
            None => format!("trapped: {error:#}"),
        };
        if stderr.is_empty() { what } else { format!("{what}; it wrote: {stderr}") }
    }

    /// What the operator says it is.
    pub fn describe(&mut self) -> Result<wit::OperatorInfo, CallError> {
        self.call(|b, s| b.weir_operator_operator().call_describe(s).map(Ok))
    }

    /// The key the operator's state belongs to.
    pub fn grouping(&mut self) -> Result<Grouping, CallError> {
        let grouping = self.call(|b, s| b.weir_operator_operator().call_grouping_key(s).map(Ok))?;
        Ok(match grouping {
            wit::Grouping::PartitionKey => Grouping::PartitionKey,
            wit::Grouping::JsonField(field) => Grouping::JsonField(field),
        })
    }

    /// Process a batch. The batch's buffers are lent to the call and given back, so nothing
    /// is copied on the host side.
    pub fn process(&mut self, batch: &mut OwnedBatch) -> Result<Output, CallError> {
        let mut wit_batch = std::mem::replace(&mut self.scratch, empty_batch());
        lend(batch, &mut wit_batch);
        let result = self.call(|b, s| b.weir_operator_operator().call_process(s, &wit_batch));
        lend(batch, &mut wit_batch);
        self.scratch = wit_batch;
        self.capped(result?)
    }

    /// Processing time advanced; the watermark is `watermark_ms`.
    pub fn tick(&mut self, now_ms: i64, watermark_ms: i64) -> Result<Output, CallError> {
        let output = self.call(|b, s| b.weir_operator_operator().call_tick(s, now_ms, watermark_ms))?;
        self.capped(output)
    }

    /// The input ended.
    pub fn finish(&mut self, now_ms: i64) -> Result<Output, CallError> {
        let output = self.call(|b, s| b.weir_operator_operator().call_finish(s, now_ms))?;
        self.capped(output)
    }

    /// A call's output, unless it is larger than the output limit.
    fn capped(&self, output: wit::Output) -> Result<Output, CallError> {
        if output.bytes.len() > self.limits.max_output_bytes {
            return Err(CallError::Failed(format!(
                "returned {} MiB of results in one call, more than its output limit of {} MiB per call (--max-output-mib)",
                output.bytes.len() >> 20,
                self.limits.max_output_bytes >> 20
            )));
        }
        Ok(from_wit(output))
    }

    /// The keyed state, checked (lengths and UTF-8 keys).
    pub fn snapshot(&mut self) -> Result<KeyedStates, CallError> {
        let state = self.call(|b, s| b.weir_operator_operator().call_snapshot(s))?;
        let state =
            KeyedStates { bytes: state.bytes, key_lens: state.key_lens, state_lens: state.state_lens };
        state.check().map_err(|e| CallError::Failed(format!("returned a malformed snapshot: {e}")))?;
        Ok(state)
    }

    /// Load keyed state. Its buffers are lent to the call and given back.
    pub fn restore(&mut self, state: &mut KeyedStates) -> Result<(), CallError> {
        let mut wit_state = wit::KeyedStates {
            bytes: std::mem::take(&mut state.bytes),
            key_lens: std::mem::take(&mut state.key_lens),
            state_lens: std::mem::take(&mut state.state_lens),
        };
        let result = self.call(|b, s| b.weir_operator_operator().call_restore(s, &wit_state));
        state.bytes = std::mem::take(&mut wit_state.bytes);
        state.key_lens = std::mem::take(&mut wit_state.key_lens);
        state.state_lens = std::mem::take(&mut wit_state.state_lens);
        result
    }
}

/// What a guest wrote to stderr before trapping, as one line: from its last panic message on,
/// without Rust's backtrace hint.
fn panic_message(stderr: &str) -> String {
    let from = stderr.rfind("panicked at").and_then(|i| stderr[..i].rfind('\n').map(|n| n + 1)).unwrap_or(0);
    stderr[from..]
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn empty_batch() -> wit::Batch {
    wit::Batch {
        shard_id: String::new(),
        now_ms: 0,
        watermark_ms: weir_contract::NO_WATERMARK,
        bytes: Vec::new(),
        key_lens: Vec::new(),
        data_lens: Vec::new(),
        arrival_times_ms: Vec::new(),
    }
}

/// Swap the contents of an SDK batch and a contract batch: the same columns, two types.
fn lend(batch: &mut OwnedBatch, wit_batch: &mut wit::Batch) {
    std::mem::swap(&mut batch.shard_id, &mut wit_batch.shard_id);
    std::mem::swap(&mut batch.now_ms, &mut wit_batch.now_ms);
    std::mem::swap(&mut batch.watermark_ms, &mut wit_batch.watermark_ms);
    std::mem::swap(&mut batch.bytes, &mut wit_batch.bytes);
    std::mem::swap(&mut batch.key_lens, &mut wit_batch.key_lens);
    std::mem::swap(&mut batch.data_lens, &mut wit_batch.data_lens);
    std::mem::swap(&mut batch.arrival_times_ms, &mut wit_batch.arrival_times_ms);
}

fn from_wit(out: wit::Output) -> Output {
    Output {
        bytes: out.bytes,
        key_lens: out.key_lens,
        data_lens: out.data_lens,
        rejected: out.rejected.into_iter().map(|r| Rejection { index: r.index, reason: r.reason }).collect(),
        event_time_ms: out.event_time_ms,
    }
}
