//! Write weir operators.
//!
//! A weir operator is a type that implements [`Operator`]. The same code runs in two places:
//!
//! - natively, in `cargo test`, driven by the [`Harness`] (feed records, advance processing
//!   time, end the input, read outputs, dead letters and snapshots), with no wasm involved;
//! - inside the weir host, as a WebAssembly component built with
//!   `cargo build --release --target wasm32-wasip2`, once [`export_operator!`] has bound the
//!   type to the `weir:operator@0.1.0` contract (see `wit/operator.wit`).
//!
//! ```
//! use weir_operator::{Batch, Error, KeyedState, Operator, Output, Settings};
//!
//! /// Counts records per partition key and emits the count at the end of the input.
//! #[derive(Default)]
//! struct Count(std::collections::BTreeMap<String, u64>);
//!
//! impl Operator for Count {
//!     const NAME: &'static str = "count";
//!     const VERSION: &'static str = "1.0.0";
//!
//!     fn init(settings: &Settings) -> Result<Self, Error> {
//!         settings.check_known(&[])?;
//!         Ok(Self::default())
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
//!     fn snapshot(&self, out: &mut Vec<KeyedState>) -> Result<(), Error> {
//!         out.extend(self.0.iter().map(|(k, n)| KeyedState::new(k, n.to_le_bytes().to_vec())));
//!         Ok(())
//!     }
//!     fn restore(&mut self, state: Vec<KeyedState>) -> Result<(), Error> {
//!         for entry in state {
//!             let bytes: [u8; 8] = entry.state.as_slice().try_into().map_err(|_| Error::new("bad count"))?;
//!             self.0.insert(entry.key, u64::from_le_bytes(bytes));
//!         }
//!         Ok(())
//!     }
//! }
//!
//! weir_operator::export_operator!(Count);
//!
//! let mut h = weir_operator::Harness::<Count>::new(&[]).unwrap();
//! h.push("AMZN", b"{}").push("AMZN", b"{}").push("GOOG", b"{}");
//! h.end_input().unwrap();
//! assert_eq!(h.output_strings(), vec![("AMZN".into(), "2".into()), ("GOOG".into(), "1".into())]);
//! ```
//!
//! Layout: [`batch`] (input records as the host packs them), [`output`] (what a call
//! produces), [`state`] (keyed snapshots), [`settings`] (`key=value` configuration),
//! [`harness`] (the native test driver), and the export glue, compiled for wasm only.
#![deny(missing_docs)]

// The generated bindings name this crate by its public path, also from inside it.
extern crate self as weir_operator;

pub mod batch;
mod error;
pub mod harness;
pub mod output;
pub mod settings;
pub mod state;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod export;

pub use batch::{Batch, OwnedBatch, Record};
pub use error::Error;
pub use harness::{DeadLetter, Harness};
pub use output::{Output, Rejection};
pub use settings::Settings;
pub use state::{INSTANCE_KEY, KeyedState};

/// The version of the `weir:operator` contract this SDK builds components for.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// A stream operator: keyed state, fed batches of records, producing output records.
///
/// An instance sees the records of one shard. Calls come in this order: [`init`](Self::init),
/// then optionally [`restore`](Self::restore), then any number of [`process`](Self::process)
/// and [`tick`](Self::tick), then [`finish`](Self::finish) if the input ends;
/// [`snapshot`](Self::snapshot) may be called between any two of them.
///
/// An operator must be deterministic: given the same calls with the same arguments it produces
/// the same outputs. It has no clock and no randomness of its own; time comes from the host
/// (`Batch::now_ms`, `tick`, and the records' arrival times).
pub trait Operator: Sized + 'static {
    /// Short name of the operator, such as `sliding-window-max`.
    const NAME: &'static str;
    /// Version of the operator (not of the contract).
    const VERSION: &'static str;

    /// Build an instance from `key=value` settings. Reject unknown keys and bad values with a
    /// message that names the setting and what is accepted.
    fn init(settings: &Settings) -> Result<Self, Error>;

    /// Process one batch. Refuse single records with [`Output::reject`]; return an error only
    /// when the whole batch cannot be processed.
    fn process(&mut self, batch: &Batch<'_>, out: &mut Output) -> Result<(), Error>;

    /// Processing time has advanced to `now_ms` without new input.
    fn tick(&mut self, now_ms: i64, out: &mut Output) -> Result<(), Error> {
        let _ = (now_ms, out);
        Ok(())
    }

    /// The input has ended: emit whatever is pending.
    fn finish(&mut self, now_ms: i64, out: &mut Output) -> Result<(), Error> {
        let _ = (now_ms, out);
        Ok(())
    }

    /// Append the whole state, one entry per partition key (and at most one entry for
    /// [`INSTANCE_KEY`], holding instance-wide state).
    fn snapshot(&self, out: &mut Vec<KeyedState>) -> Result<(), Error>;

    /// Load entries produced by [`snapshot`](Self::snapshot), possibly of several instances
    /// (after a merge of shards: then several [`INSTANCE_KEY`] entries can arrive).
    fn restore(&mut self, state: Vec<KeyedState>) -> Result<(), Error>;
}

/// Export `$operator` (a type implementing [`Operator`]) as this crate's WebAssembly
/// component. Use it once, at the top level of an operator crate built with
/// `crate-type = ["cdylib", "rlib"]`; it expands to nothing when not compiling for wasm, so
/// the same crate also builds natively for `cargo test`.
#[macro_export]
macro_rules! export_operator {
    ($operator:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::export as __glue;

            static __WEIR_SLOT: __glue::Slot<$operator> = __glue::Slot::new();

            struct __WeirComponent;

            impl __glue::Guest for __WeirComponent {
                fn describe() -> __glue::WitOperatorInfo {
                    __glue::describe::<$operator>()
                }
                fn init(settings: ::std::vec::Vec<(::std::string::String, ::std::string::String)>) -> ::std::result::Result<(), ::std::string::String> {
                    __glue::init(&__WEIR_SLOT, settings)
                }
                fn process(batch: __glue::WitBatch) -> ::std::result::Result<__glue::WitOutput, ::std::string::String> {
                    __glue::process(&__WEIR_SLOT, batch)
                }
                fn tick(now_ms: i64) -> ::std::result::Result<__glue::WitOutput, ::std::string::String> {
                    __glue::tick(&__WEIR_SLOT, now_ms)
                }
                fn finish(now_ms: i64) -> ::std::result::Result<__glue::WitOutput, ::std::string::String> {
                    __glue::finish(&__WEIR_SLOT, now_ms)
                }
                fn snapshot() -> ::std::result::Result<::std::vec::Vec<__glue::WitKeyedState>, ::std::string::String> {
                    __glue::snapshot(&__WEIR_SLOT)
                }
                fn restore(state: ::std::vec::Vec<__glue::WitKeyedState>) -> ::std::result::Result<(), ::std::string::String> {
                    __glue::restore(&__WEIR_SLOT, state)
                }
            }

            $crate::export::bindings::__weir_export_component!(__WeirComponent with_types_in $crate::export::bindings);
        };
    };
}
