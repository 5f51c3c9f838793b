//! Loading operators: the wasmtime engine (with its epoch ticker), checks that refuse a bad
//! component before any record is read, the compiled cache, and pre-instantiation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker, types::ComponentItem};
use wasmtime::{Config, Engine};

use weir_contract::{CONTRACT, Contract, Grouping};

use super::bindings::{OperatorComponentPre, wit};
use super::cache::{CacheOutcome, CompiledCache};
use super::instance::{HostState, Instance};
use super::pool::{InstancePool, PoolUsage};
use super::{Limits, LoadError, limits::EPOCH_TICK};
use crate::artifact::Artifact;

/// The wasmtime engine shared by every operator instance, and how components are linked.
#[derive(Clone)]
pub struct OperatorEngine {
    engine: Engine,
    linker: Arc<Linker<HostState>>,
    limits: Limits,
    cache: Option<CompiledCache>,
    pool: Option<InstancePool>,
}

/// What every engine compiles and runs with, whichever way it allocates instances.
fn config(limits: &Limits) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // The CPU limit: cheaper than fuel metering, see BENCHMARKS.md.
    config.epoch_interruption(limits.max_call_time.is_some());
    // For profiling (BENCHMARKS.md): `perf` names the operator's functions from
    // /tmp/perf-PID.map instead of showing bare addresses.
    if std::env::var_os("WEIR_PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    // For profiling by source line (BENCHMARKS.md): wasmtime writes the operator's DWARF (a
    // guest built with debug info) into the compiled code, native addresses to source lines.
    if std::env::var_os("WEIR_DEBUG_INFO").is_some() {
        config.debug_info(true);
    }
    config
}

impl OperatorEngine {
    /// An engine enforcing `limits`, caching compiled components in `cache` (None: compile on
    /// every load), allocating each instance on demand.
    pub fn new(limits: Limits, cache: Option<CompiledCache>) -> Result<Self, LoadError> {
        let engine = Engine::new(&config(&limits)).map_err(LoadError::Engine)?;
        Self::with_engine(engine, limits, cache, None)
    }

    /// The same, with `pool`'s instance slots reserved up front (see [`super::pool`]); where
    /// they cannot be reserved, it warns and allocates on demand.
    pub fn pooled(
        limits: Limits,
        cache: Option<CompiledCache>,
        pool: InstancePool,
    ) -> Result<Self, LoadError> {
        let mut config = config(&limits);
        config.allocation_strategy(pool.strategy(&limits));
        match Engine::new(&config) {
            Ok(engine) => Self::with_engine(engine, limits, cache, Some(pool)),
            Err(error) => {
                tracing::warn!(
                    "cannot reserve slots for {} operator instances ({error:#}); allocating each instance on demand, which makes swaps and restarts pause longer",
                    pool.slots()
                );
                Self::new(limits, cache)
            }
        }
    }

    fn with_engine(
        engine: Engine,
        limits: Limits,
        cache: Option<CompiledCache>,
        pool: Option<InstancePool>,
    ) -> Result<Self, LoadError> {
        let mut linker = Linker::new(&engine);
        // A wasip2 guest built with Rust's std imports WASI interfaces even when it uses none;
        // they are linked to a context that grants nothing (see instance.rs).
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(LoadError::Engine)?;
        if limits.max_call_time.is_some() {
            spawn_epoch_ticker(&engine);
        }
        Ok(Self { engine, linker: Arc::new(linker), limits, cache, pool })
    }

    /// The instance slots this engine reserved, if it pools instances.
    pub fn pool(&self) -> Option<InstancePool> {
        self.pool
    }

    /// Check and compile (or load from the cache) `artifact`, instantiate it once and call
    /// `init` with `settings`, so that a bad component or bad settings are refused now.
    pub fn load(
        &self,
        artifact: Artifact,
        settings: &[(String, String)],
    ) -> Result<LoadedOperator, LoadError> {
        let origin = artifact.origin.clone();
        check_header(&artifact)?;
        let started = Instant::now();
        let (component, cache) = CompiledCache::load_or_compile(self.cache.as_ref(), &self.engine, &artifact)
            .map_err(|error| LoadError::Compile { origin: origin.clone(), error })?;
        let load_time = started.elapsed();
        check_contract(&self.engine, &component, &origin)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .and_then(OperatorComponentPre::new)
            .map_err(|error| LoadError::Link { origin: origin.clone(), error })?;
        let mut loaded = LoadedOperator {
            pre,
            artifact: Arc::new(artifact),
            settings: settings.to_vec(),
            limits: self.limits,
            info: wit::OperatorInfo { name: String::new(), version: String::new() },
            grouping: Grouping::PartitionKey,
            cache,
            load_time,
            pool: self.pool,
        };
        let mut probe = loaded.instantiate()?;
        let failed = |e: super::CallError| LoadError::Init { origin: origin.clone(), message: e.to_string() };
        loaded.info = probe.describe().map_err(failed)?;
        loaded.grouping = probe.grouping().map_err(failed)?;
        if let Grouping::JsonField(field) = &loaded.grouping
            && field.is_empty()
        {
            return Err(LoadError::Init {
                origin,
                message: "it groups records by a JSON field with an empty name".into(),
            });
        }
        Ok(loaded)
    }
}

/// A checked, compiled operator with its settings, ready to instantiate.
#[derive(Clone)]
pub struct LoadedOperator {
    pre: OperatorComponentPre<HostState>,
    artifact: Arc<Artifact>,
    settings: Vec<(String, String)>,
    limits: Limits,
    info: wit::OperatorInfo,
    grouping: Grouping,
    cache: CacheOutcome,
    load_time: Duration,
    pool: Option<InstancePool>,
}

impl LoadedOperator {
    /// A new instance, initialised with the operator's settings.
    pub fn instantiate(&self) -> Result<Instance, LoadError> {
        Instance::new(&self.pre, self.limits, &self.settings, &self.artifact.origin).map_err(|e| {
            match (e, self.pool) {
                (LoadError::Instantiate { origin, error }, Some(pool))
                    if error.is::<wasmtime::PoolConcurrencyLimitError>() =>
                {
                    LoadError::PoolFull { origin, slots: pool.slots(), error }
                }
                (e, _) => e,
            }
        })
    }

    /// What the engine's instance slots hold, read when called (None if it does not pool
    /// instances). It keeps the engine, not this operator: a version swapped out is dropped.
    pub fn pool_usage(&self) -> impl Fn() -> Option<PoolUsage> + Send + Sync + 'static {
        let (pool, engine) = (self.pool, self.pre.engine().clone());
        move || pool?.usage(&engine)
    }

    /// The artifact it was loaded from.
    pub fn artifact(&self) -> &Artifact {
        &self.artifact
    }

    /// What the operator says it is.
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// The operator's own version.
    pub fn version(&self) -> &str {
        &self.info.version
    }

    /// Whether loading used the compiled cache.
    /// The key the operator's state belongs to, which records are routed by.
    pub fn grouping(&self) -> &Grouping {
        &self.grouping
    }

    pub fn cache_outcome(&self) -> CacheOutcome {
        self.cache
    }

    /// How long compiling or loading the compiled artifact took.
    pub fn load_time(&self) -> Duration {
        self.load_time
    }
}

/// The engine's epoch advances every [`EPOCH_TICK`] on one background thread for as long as
/// the engine lives; a call that runs past its deadline traps.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new().name("weir-epoch".into()).spawn(move || {
        while let Some(engine) = weak.upgrade() {
            engine.increment_epoch();
            drop(engine);
            std::thread::sleep(EPOCH_TICK);
        }
    });
    if let Err(e) = spawned {
        tracing::error!("cannot start the operator CPU-limit thread, calls will not time out: {e}");
    }
}

/// Refuse what is not a WebAssembly component, saying what it is instead.
fn check_header(artifact: &Artifact) -> Result<(), LoadError> {
    let origin = artifact.origin.clone();
    if wasmparser::Parser::is_component(&artifact.bytes) {
        Ok(())
    } else if wasmparser::Parser::is_core_wasm(&artifact.bytes) {
        Err(LoadError::CoreModule { origin })
    } else {
        Err(LoadError::NotWasm { origin })
    }
}

/// Refuse a component that does not export a compatible `weir:operator/operator`.
fn check_contract(engine: &Engine, component: &Component, origin: &str) -> Result<(), LoadError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine)
        .filter(|(_, item)| matches!(item.ty, ComponentItem::ComponentInstance(_)))
        .map(|(name, _)| name.to_string())
        .collect();
    if exports.iter().any(|name| CONTRACT.accepts_export(name)) {
        return Ok(());
    }
    if let Some(old) = exports.iter().find_map(|name| Contract::of_export(name)) {
        return Err(LoadError::OldContract { origin: origin.to_string(), found: old });
    }
    Err(LoadError::WrongContract { origin: origin.to_string(), found: exports })
}
