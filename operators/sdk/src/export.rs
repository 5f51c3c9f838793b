//! The glue between an [`Operator`] and the component exports of the contract, compiled for
//! wasm only. [`export_operator!`](crate::export_operator) expands to a type implementing the
//! generated `Guest` trait by calling the functions here.

use std::cell::RefCell;
use std::thread::LocalKey;

use crate::{Batch, Error, Grouping, KeyedStates, Operator, Output, Settings};

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

/// Where the component's one operator instance lives: a thread-local cell (wasm32-wasip2 has
/// one thread, and the component model forbids re-entrance, so a borrow never overlaps another).
pub struct Slot<O>(RefCell<Option<O>>);

impl<O> Slot<O> {
    /// An empty slot.
    pub const fn new() -> Self {
        Self(RefCell::new(None))
    }
}

impl<O> Default for Slot<O> {
    fn default() -> Self {
        Self::new()
    }
}

type SlotKey<O> = LocalKey<Slot<O>>;

fn with_operator<O: Operator, R>(
    slot: &'static SlotKey<O>,
    f: impl FnOnce(&mut O) -> Result<R, Error>,
) -> Result<R, String> {
    slot.with(|slot| match slot.0.try_borrow_mut() {
        Ok(mut operator) => match operator.as_mut() {
            Some(operator) => f(operator).map_err(Error::into_message),
            None => Err("the operator was called before init".to_string()),
        },
        Err(_) => Err("the operator was entered while a call was running".to_string()),
    })
}

pub fn describe(name: &str, version: &str) -> wit::OperatorInfo {
    wit::OperatorInfo { name: name.to_string(), version: version.to_string() }
}

pub fn init<O: Operator>(slot: &'static SlotKey<O>, settings: Vec<(String, String)>) -> Result<(), String> {
    let operator = O::init(&Settings::new(settings)).map_err(Error::into_message)?;
    slot.with(|slot| *slot.0.borrow_mut() = Some(operator));
    Ok(())
}

/// The operator's grouping key. Never fails: before `init` (which the host never does) it is
/// the partition key.
pub fn grouping<O: Operator>(slot: &'static SlotKey<O>) -> wit::Grouping {
    let grouping = with_operator(slot, |operator| Ok(operator.grouping())).unwrap_or_default();
    match grouping {
        Grouping::PartitionKey => wit::Grouping::PartitionKey,
        Grouping::JsonField(field) => wit::Grouping::JsonField(field),
    }
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
        event_time_ms: out.event_time_ms,
    }
}

fn call<O: Operator>(
    slot: &'static SlotKey<O>,
    f: impl FnOnce(&mut O, &mut Output) -> Result<(), Error>,
) -> Result<wit::Output, String> {
    with_operator(slot, |operator| {
        let mut out = Output::default();
        f(operator, &mut out)?;
        Ok(to_wit(out))
    })
}

pub fn process<O: Operator>(slot: &'static SlotKey<O>, batch: wit::Batch) -> Result<wit::Output, String> {
    let view = Batch::new(
        &batch.shard_id,
        batch.now_ms,
        &batch.bytes,
        &batch.key_lens,
        &batch.data_lens,
        &batch.arrival_times_ms,
    )
    .map_err(Error::into_message)?
    .with_watermark_ms(batch.watermark_ms);
    call(slot, |op, out| op.process(&view, out))
}

pub fn tick<O: Operator>(
    slot: &'static SlotKey<O>,
    now_ms: i64,
    watermark_ms: i64,
) -> Result<wit::Output, String> {
    call(slot, |op, out| op.tick(now_ms, watermark_ms, out))
}

pub fn finish<O: Operator>(slot: &'static SlotKey<O>, now_ms: i64) -> Result<wit::Output, String> {
    call(slot, |op, out| op.finish(now_ms, out))
}

pub fn snapshot<O: Operator>(slot: &'static SlotKey<O>) -> Result<wit::KeyedStates, String> {
    with_operator(slot, |operator| {
        let mut state = KeyedStates::default();
        operator.snapshot(&mut state)?;
        Ok(wit::KeyedStates { bytes: state.bytes, key_lens: state.key_lens, state_lens: state.state_lens })
    })
}

pub fn restore<O: Operator>(slot: &'static SlotKey<O>, state: wit::KeyedStates) -> Result<(), String> {
    let state = KeyedStates { bytes: state.bytes, key_lens: state.key_lens, state_lens: state.state_lens };
    state.check().map_err(Error::into_message)?;
    with_operator(slot, |operator| operator.restore(&state))
}

pub use exports::Guest;
pub use wit::{
    Batch as WitBatch, Grouping as WitGrouping, KeyedStates as WitKeyedStates,
    OperatorInfo as WitOperatorInfo, Output as WitOutput,
};
