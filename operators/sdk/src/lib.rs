//! Write weir operators.
//!
//! A weir operator runs in two places from the same code:
//!
//! - natively, in `cargo test`, driven by the [`Harness`] (feed records, advance processing
//!   time, end the input, read outputs, dead letters and snapshots), with no wasm involved;
//! - inside the weir host, as a WebAssembly component built with
//!   `cargo build --release --target wasm32-wasip2`, bound to the contract ([`CONTRACT`], the
//!   version of `wit/operator.wit`) by one macro line.
//!
//! A stateless map or filter is one function and [`export_map!`]:
//!
//! ```
//! use weir_operator::{Error, Output, Record};
//!
//! /// Keeps the records whose data mentions AMZN, upper-cased.
//! fn shout(record: &Record<'_>, out: &mut Output) -> Result<(), Error> {
//!     if record.data.windows(4).any(|w| w == b"AMZN") {
//!         out.emit(record.partition_key, &record.data.to_ascii_uppercase());
//!     }
//!     Ok(())
//! }
//! weir_operator::export_map!(Shout, shout);
//!
//! let mut h = weir_operator::Harness::<Shout>::new(&[]).unwrap();
//! h.push("k", b"amzn? AMZN!").push("k", b"GOOG");
//! h.end_input().unwrap();
//! assert_eq!(h.output_strings(), [("k".to_string(), "AMZN? AMZN!".to_string())]);
//! ```
//!
//! A stateful operator implements [`Operator`], says what its grouping key is (the host routes
//! every record of one key to the same instance) and keeps its state per grouping key, encoded
//! with [`codec`] (serde, behind a format version byte, so a later version can read it):
//!
//! ```
//! use std::collections::BTreeMap;
//! use weir_operator::{Batch, Error, Grouping, KeyedStates, Operator, Output, Settings, codec};
//!
//! /// Counts records per partition key and emits the counts at the end of the input.
//! #[derive(Default)]
//! struct Count(BTreeMap<String, u64>);
//!
//! impl Operator for Count {
//!     fn init(settings: &Settings) -> Result<Self, Error> {
//!         settings.check_known(&[])?;
//!         Ok(Self::default())
//!     }
//!     fn grouping(&self) -> Grouping {
//!         Grouping::PartitionKey
//!     }
//!     fn process(&mut self, batch: &Batch<'_>, _out: &mut Output) -> Result<(), Error> {
//!         for record in batch.records() {
//!             *self.0.entry(record.partition_key.to_owned()).or_default() += 1;
//!         }
//!         Ok(())
//!     }
//!     fn finish(&mut self, _now_ms: i64, out: &mut Output) -> Result<(), Error> {
//!         for (key, n) in &self.0 {
//!             out.emit(key, n.to_string().as_bytes());
//!         }
//!         Ok(())
//!     }
//!     fn snapshot(&self, out: &mut KeyedStates) -> Result<(), Error> {
//!         for (key, n) in &self.0 {
//!             out.push_with(key, |buf| codec::encode_into(1, n, buf))?;
//!         }
//!         Ok(())
//!     }
//!     fn restore(&mut self, state: &KeyedStates) -> Result<(), Error> {
//!         for entry in state.iter() {
//!             self.0.insert(entry.key.to_owned(), codec::decode(1, entry.state)?);
//!         }
//!         Ok(())
//!     }
//! }
//!
//! weir_operator::export_operator!(Count);
//!
//! let mut h = weir_operator::Harness::<Count>::new(&[]).unwrap();
//! h.push("AMZN", b"{}").push("AMZN", b"{}").push("GOOG", b"{}");
//! let state = h.snapshot().unwrap();
//! h.restart_from(&state).unwrap();
//! h.end_input().unwrap();
//! assert_eq!(h.output_strings(), vec![("AMZN".into(), "2".into()), ("GOOG".into(), "1".into())]);
//! ```
//!
//! Layout: the data types come from `weir-contract` and are re-exported here ([`Batch`],
//! [`Output`], [`KeyedStates`], [`Grouping`], [`DeadLetter`], [`Error`]); [`settings`] (`key=value`
//! configuration), [`codec`] (versioned state encoding), [`harness`] (the native test driver),
//! the export macros below, and the glue they expand to, compiled for wasm only.
#![deny(missing_docs)]

// The generated bindings name this crate by its public path, also from inside it.
extern crate self as weir_operator;

pub mod codec;
pub mod harness;
pub mod settings;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod export;

pub use harness::Harness;
pub use settings::Settings;
pub use weir_contract::{
    Batch, CONTRACT, Contract, DeadLetter, Error, Grouping, INSTANCE_KEY, KeyedStates, Lateness,
    NO_WATERMARK, Output, OwnedBatch, Record, Rejection, StateEntry, batch, output, state,
};

/// A stream operator: keyed state, fed batches of records, producing output records.
///
/// Calls come in this order: [`init`](Self::init), then optionally [`restore`](Self::restore),
/// then any number of [`process`](Self::process) and [`tick`](Self::tick), then
/// [`finish`](Self::finish) if the input ends; [`snapshot`](Self::snapshot) may be called
/// between any two of them.
///
/// An operator must be deterministic: given the same calls with the same arguments it produces
/// the same outputs. It has no clock and no randomness of its own; time comes from the host
/// (`Batch::now_ms`, `Batch::watermark_ms`, `tick`, and the records' arrival times).
///
/// State belongs to the [`grouping`](Self::grouping) key: the host sends every record of one
/// key to the same instance, and several instances run side by side, each with its own keys.
/// An operator in event time reports the event time of each record it accepts
/// ([`Output::observe_event_time`]) and fires on the watermark the host passes back, the
/// minimum over the shards being read, so that a shard behind does not make another's records
/// late.
///
/// A stateless operator needs only `init` and `process` (or just a function: [`export_map!`]).
/// A stateful one overrides [`grouping`](Self::grouping), [`snapshot`](Self::snapshot) and
/// [`restore`](Self::restore): the host moves state only through them, per key (to a new
/// version, to another parallelism, after a crash).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a weir operator",
    label = "this type does not implement `weir_operator::Operator`",
    note = "implement `weir_operator::Operator` for it, or export a stateless function with `weir_operator::export_map!(Name, function)`"
)]
pub trait Operator: Sized + 'static {
    /// Build an instance from `key=value` settings. Reject unknown keys and bad values with a
    /// message that names the setting and what is accepted.
    fn init(settings: &Settings) -> Result<Self, Error>;

    /// Process one batch. Refuse single records with [`Output::reject`]; return an error only
    /// when the whole batch cannot be processed.
    fn process(&mut self, batch: &Batch<'_>, out: &mut Output) -> Result<(), Error>;

    /// The key this instance's state and results belong to; the host routes records by it.
    /// The default is the partition key, right for stateless operators.
    fn grouping(&self) -> Grouping {
        Grouping::PartitionKey
    }

    /// Processing time has advanced to `now_ms` without new input, and the event-time
    /// watermark is `watermark_ms` ([`NO_WATERMARK`] before any).
    fn tick(&mut self, now_ms: i64, watermark_ms: i64, out: &mut Output) -> Result<(), Error> {
        let _ = (now_ms, watermark_ms, out);
        Ok(())
    }

    /// The input has ended: emit whatever is pending.
    fn finish(&mut self, now_ms: i64, out: &mut Output) -> Result<(), Error> {
        let _ = (now_ms, out);
        Ok(())
    }

    /// Append the whole state, one entry per grouping key (and at most one entry for
    /// [`INSTANCE_KEY`], holding instance-wide state). The default, for stateless operators,
    /// appends nothing.
    fn snapshot(&self, out: &mut KeyedStates) -> Result<(), Error> {
        let _ = out;
        Ok(())
    }

    /// Load entries produced by [`snapshot`](Self::snapshot): those of the keys this instance
    /// owns, possibly from several instances (after a change of parallelism several
    /// [`INSTANCE_KEY`] entries can arrive, which the operator combines). The default, for
    /// stateless operators, ignores them.
    fn restore(&mut self, state: &KeyedStates) -> Result<(), Error> {
        let _ = state;
        Ok(())
    }
}

/// Run `f` on every record of `batch`; a record `f` fails on is refused with its message (it
/// goes to the dead-letter destination). What [`export_map!`] operators do.
pub fn map_records(
    batch: &Batch<'_>,
    out: &mut Output,
    mut f: impl FnMut(&Record<'_>, &mut Output) -> Result<(), Error>,
) {
    for record in batch.records() {
        if let Err(e) = f(&record, out) {
            out.reject(record.index, e.into_message());
        }
    }
}

#[doc(hidden)]
pub const fn assert_operator<O: Operator>() {}

/// Export `$operator` (a type implementing [`Operator`]) as this crate's WebAssembly
/// component. Use it once, at the top level of an operator crate built with
/// `crate-type = ["cdylib", "rlib"]`.
///
/// The operator describes itself to the host by the crate's name and version (from Cargo);
/// `export_operator!(T, name = "...", version = "...")` says otherwise. Natively the macro
/// only checks that `$operator` is an operator, so `cargo test` catches what the wasm build
/// would.
#[macro_export]
macro_rules! export_operator {
    ($operator:ty) => {
        $crate::export_operator!($operator, name = env!("CARGO_PKG_NAME"), version = env!("CARGO_PKG_VERSION"));
    };
    ($operator:ty, name = $name:expr, version = $version:expr) => {
        const _: () = $crate::assert_operator::<$operator>();

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::export as __glue;

            ::std::thread_local! {
                static __WEIR_SLOT: __glue::Slot<$operator> = const { __glue::Slot::new() };
            }

            struct __WeirComponent;

            impl __glue::Guest for __WeirComponent {
                fn describe() -> __glue::WitOperatorInfo {
                    __glue::describe($name, $version)
                }
                fn init(settings: ::std::vec::Vec<(::std::string::String, ::std::string::String)>) -> ::std::result::Result<(), ::std::string::String> {
                    __glue::init(&__WEIR_SLOT, settings)
                }
                fn grouping_key() -> __glue::WitGrouping {
                    __glue::grouping(&__WEIR_SLOT)
                }
                fn process(batch: __glue::WitBatch) -> ::std::result::Result<__glue::WitOutput, ::std::string::String> {
                    __glue::process(&__WEIR_SLOT, batch)
                }
                fn tick(now_ms: i64, watermark_ms: i64) -> ::std::result::Result<__glue::WitOutput, ::std::string::String> {
                    __glue::tick(&__WEIR_SLOT, now_ms, watermark_ms)
                }
                fn finish(now_ms: i64) -> ::std::result::Result<__glue::WitOutput, ::std::string::String> {
                    __glue::finish(&__WEIR_SLOT, now_ms)
                }
                fn snapshot() -> ::std::result::Result<__glue::WitKeyedStates, ::std::string::String> {
                    __glue::snapshot(&__WEIR_SLOT)
                }
                fn restore(state: __glue::WitKeyedStates) -> ::std::result::Result<(), ::std::string::String> {
                    __glue::restore(&__WEIR_SLOT, state)
                }
            }

            $crate::export::bindings::__weir_export_component!(__WeirComponent with_types_in $crate::export::bindings);
        };
    };
}

/// Export a stateless function as this crate's operator: `export_map!(Name, function)` defines
/// the unit struct `Name` (an [`Operator`] that takes no settings, for the [`Harness`]) and
/// exports it. `function(&Record, &mut Output) -> Result<(), Error>` emits zero or more records
/// per input record; an error refuses that record, with the message as the reason.
#[macro_export]
macro_rules! export_map {
    ($name:ident, $function:path) => {
        #[doc = concat!("The operator of `", stringify!($function), "`, record by record.")]
        #[derive(Clone, Copy, Debug, Default)]
        pub struct $name;

        impl $crate::Operator for $name {
            fn init(settings: &$crate::Settings) -> ::std::result::Result<Self, $crate::Error> {
                settings.check_known(&[])?;
                Ok(Self)
            }
            fn process(
                &mut self,
                batch: &$crate::Batch<'_>,
                out: &mut $crate::Output,
            ) -> ::std::result::Result<(), $crate::Error> {
                $crate::map_records(batch, out, $function);
                Ok(())
            }
        }

        $crate::export_operator!($name);
    };
}
