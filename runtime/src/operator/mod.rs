//! The wasmtime host for operator components.
//!
//! - [`engine`]: the engine, the checks that refuse a bad component before any record is read,
//!   pre-instantiation;
//! - [`cache`]: compiled components on disk, keyed by digest and engine;
//! - [`instance`]: one instance's store and its typed calls, under [`limits`];
//! - [`pool`]: instance slots reserved up front, so that swaps and restarts reuse mapped memory;
//! - [`runner`]: one instance of the pipeline: snapshots, and recovery after a trap (a fresh
//!   instance from the last snapshot, the calls since replayed, the poison records isolated);
//! - [`bindings`]: the code `bindgen!` generates from `wit/operator.wit`;
//! - [`toolchain`]: what made a component (language, tools), as `weir check` shows it.

pub mod bindings;
pub mod cache;
pub mod engine;
pub mod instance;
pub mod limits;
pub mod pool;
pub mod runner;
pub mod toolchain;

pub use cache::{CacheOutcome, CompiledCache};
pub use engine::{LoadedOperator, OperatorEngine};
pub use instance::Instance;
pub use limits::Limits;
pub use pool::{InstancePool, PoolUsage};
pub use runner::{DEFAULT_SNAPSHOT_EVERY, OnOperatorError, Processed, Runner, RunnerError};
pub use toolchain::Toolchain;

/// Why an operator cannot be used; every variant names the component.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The wasmtime engine could not be set up.
    #[error("cannot set up the WebAssembly engine: {0:#}")]
    Engine(wasmtime::Error),
    /// Not WebAssembly at all.
    #[error(
        "operator {origin} is not a WebAssembly component (it does not start with the \\0asm header); build one with `cargo build --release --target wasm32-wasip2`"
    )]
    NotWasm {
        /// The component's location.
        origin: String,
    },
    /// A core module, not a component.
    #[error(
        "operator {origin} is a core WebAssembly module, not a component; build it for the wasm32-wasip2 target with the weir-operator SDK (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule {
        /// The component's location.
        origin: String,
    },
    /// Compilation failed.
    #[error("operator {origin} does not compile: {error:#}")]
    Compile {
        /// The component's location.
        origin: String,
        /// Why.
        error: wasmtime::Error,
    },
    /// It does not export a compatible contract.
    #[error("operator {origin} is not a weir operator for this host: it needs to export {} ({}), and it exports {}; rebuild it against the weir-operator SDK of this weir", weir_contract::CONTRACT.accepted_exports(), weir_contract::CONTRACT, if found.is_empty() { "no interface".to_string() } else { found.join(", ") })]
    WrongContract {
        /// The component's location.
        origin: String,
        /// The interfaces it does export.
        found: Vec<String>,
    },
    /// It was built against another version of the contract.
    #[error("operator {origin} was built for the contract {found}, and this weir runs {}: rebuild it against the weir-operator SDK of this weir ({}.{}: update its `weir-operator` dependency, then `cargo build --release --target wasm32-wasip2`; see wit/operator.wit for what changed)", weir_contract::CONTRACT, weir_contract::CONTRACT.major, weir_contract::CONTRACT.minor)]
    OldContract {
        /// The component's location.
        origin: String,
        /// The contract it exports.
        found: weir_contract::Contract,
    },
    /// It imports something the host does not provide.
    #[error(
        "operator {origin} cannot be linked (it imports something weir does not provide: operators get no capabilities beyond the contract): {error:#}"
    )]
    Link {
        /// The component's location.
        origin: String,
        /// Why.
        error: wasmtime::Error,
    },
    /// Instantiation failed.
    #[error("operator {origin} cannot be instantiated: {error:#}")]
    Instantiate {
        /// The component's location.
        origin: String,
        /// Why.
        error: wasmtime::Error,
    },
    /// Every instance slot the engine reserved is in use (see [`pool`]).
    #[error(
        "operator {origin} cannot be instantiated: the {slots} instance slots reserved for it are all in use ({error:#}); run with more slots (--instance-slots) or allocate instances on demand (--instance-slots off)"
    )]
    PoolFull {
        /// The component's location.
        origin: String,
        /// How many instances the engine keeps slots for.
        slots: u32,
        /// What wasmtime ran out of.
        error: wasmtime::Error,
    },
    /// `init` refused the settings or trapped.
    #[error("operator {origin} failed to initialise: {message}")]
    Init {
        /// The component's location.
        origin: String,
        /// What the operator said.
        message: String,
    },
}

/// A call into an instance that did not succeed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The instance trapped (a panic, a limit); it cannot be entered again.
    #[error("{0}")]
    Trap(String),
    /// The operator returned an error.
    #[error("failed: {0}")]
    Failed(String),
}
