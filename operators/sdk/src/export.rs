//! The glue between an [`Operator`] and the `weir:operator@0.1.0` component exports, compiled
//! for wasm only. [`export_operator!`](crate::export_operator) expands to a type implementing
//! the generated `Guest` trait by calling the functions here.

use std::cell::UnsafeCell;

use crate::{Batch, Error, KeyedState, Operator, Output, Settings};

#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "operator-component",
        pub_export_macro: true,
        export_macro_name: "__weir_export_component",
        default_bindings_module: "weir_operator::export::bindings",
        runtime_path: "weir_operator::export::wit_bindgen_rt",
    });
}

pub use wit_bindgen::rt as wit_bindgen_rt;

use bindings::exports::weir::operator::operator as exports;
use bindings::weir::operator::types as wit;

/// Where the component's one operator instance lives. A component instance is entered by one
/// call at a time (the component model forbids re-entrance) and wasm32-wasip2 has no threads,
/// so a plain cell suffices.
pub struct Slot<O>(UnsafeCell<Option<O>>);

// SAFETY: see the type's doc: there is one thread and no re-entrance.
unsafe impl<O> Sync for Slot<O> {}

impl<O> Slot<O> {
    /// An empty slot.
    pub const fn new() -> Self {
        Self(UnsafeCell::new(None))
    }

    fn with<R>(&self, f: impl FnOnce(&mut Option<O>) -> R) -> R {
        // SAFETY: one thread, no re-entrance (see the type's doc), so no other borrow exists.
        f(unsafe { &mut *self.0.get() })
    }
}

impl<O> Default for Slot<O> {
    fn default() -> Self {
        Self::new()
    }
}

fn not_initialised() -> String {
    "the operator was called before init".to_string()
}

pub fn describe<O: Operator>() -> wit::OperatorInfo {
    wit::OperatorInfo { name: O::NAME.to_string(), version: O::VERSION.to_string() }
}

pub fn init<O: Operator>(slot: &Slot<O>, settings: Vec<(String, String)>) -> Result<(), String> {
    let operator = O::init(&Settings::new(settings)).map_err(Error::into_message)?;
    slot.with(|s| *s = Some(operator));
    Ok(())
}

fn to_wit(out: Output) -> wit::Output {
    wit::Output {
        bytes: out.bytes,
        key_lens: out.key_lens,
        data_lens: out.data_lens,
        rejected: out
            .rejected
            .into_iter()
            .map(|r| wit::Rejection { index: r.index, reason: r.reason })
            .collect(),
    }
}

fn call<O: Operator>(
    slot: &Slot<O>,
    f: impl FnOnce(&mut O, &mut Output) -> Result<(), Error>,
) -> Result<wit::Output, String> {
    slot.with(|s| {
        let operator = s.as_mut().ok_or_else(not_initialised)?;
        let mut out = Output::default();
        f(operator, &mut out).map_err(Error::into_message)?;
        Ok(to_wit(out))
    })
}

pub fn process<O: Operator>(slot: &Slot<O>, batch: wit::Batch) -> Result<wit::Output, String> {
    let view = Batch::new(
        &batch.shard_id,
        batch.now_ms,
        &batch.bytes,
        &batch.key_lens,
        &batch.data_lens,
        &batch.arrival_times_ms,
    )
    .map_err(Error::into_message)?;
    call(slot, |op, out| op.process(&view, out))
}

pub fn tick<O: Operator>(slot: &Slot<O>, now_ms: i64) -> Result<wit::Output, String> {
    call(slot, |op, out| op.tick(now_ms, out))
}

pub fn finish<O: Operator>(slot: &Slot<O>, now_ms: i64) -> Result<wit::Output, String> {
    call(slot, |op, out| op.finish(now_ms, out))
}

pub fn snapshot<O: Operator>(slot: &Slot<O>) -> Result<Vec<wit::KeyedState>, String> {
    slot.with(|s| {
        let operator = s.as_ref().ok_or_else(not_initialised)?;
        let mut state = Vec::new();
        operator.snapshot(&mut state).map_err(Error::into_message)?;
        Ok(state.into_iter().map(|e| wit::KeyedState { key: e.key, state: e.state }).collect())
    })
}

pub fn restore<O: Operator>(slot: &Slot<O>, state: Vec<wit::KeyedState>) -> Result<(), String> {
    slot.with(|s| {
        let operator = s.as_mut().ok_or_else(not_initialised)?;
        let state = state.into_iter().map(|e| KeyedState { key: e.key, state: e.state }).collect();
        operator.restore(state).map_err(Error::into_message)
    })
}

pub use exports::Guest;
pub use wit::{
    Batch as WitBatch, KeyedState as WitKeyedState, OperatorInfo as WitOperatorInfo, Output as WitOutput,
};
