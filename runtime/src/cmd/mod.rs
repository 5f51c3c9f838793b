//! What each subcommand does, one module per command: build the library's objects from the
//! parsed command line ([`crate::cli`]), refuse what can be refused before anything runs, run
//! them, and report in words. The only place that uses `anyhow`.
//!
//! Shared here: the operator engine and the loading of an operator from a location.

pub mod check;
pub mod deploy;
pub mod keygen;
pub mod leases;
pub mod new;
pub mod resume;
pub mod run;
pub mod shadow;
pub mod signals;
pub mod tail;
pub mod wiring;

use std::time::Duration;

use anyhow::{Context, Result, bail};
use weir::artifact::Artifact;
use weir::deployment::{DiffDestination, OperatorStore, Trust, Watch};
use weir::location::Location;
use weir::operator::{CacheOutcome, CompiledCache, InstancePool, Limits, LoadedOperator, OperatorEngine};

use crate::cli::{HostArgs, InstanceSlots, TrustArgs};

/// Resolve a file or built-in operator location to its bytes.
pub fn resolve_local_operator(location: &Location) -> Result<Artifact> {
    match location {
        Location::File(path) => Ok(Artifact::from_file(path)?),
        Location::Builtin(name) => Ok(Artifact::builtin(name)?),
        other => bail!(
            "operator location {other} is not supported: give a .wasm file, s3://BUCKET/PREFIX or builtin:sliding-window-max"
        ),
    }
}

/// The engine `host` asks for; for a run of `parallelism` instances, with slots for them
/// reserved up front unless `--instance-slots` says otherwise.
pub fn engine(host: &HostArgs, parallelism: Option<usize>) -> Result<OperatorEngine> {
    let limits = Limits {
        max_memory_bytes: host.max_memory_mib << 20,
        max_call_time: host.max_call_time.0,
        max_output_bytes: host.max_output_mib << 20,
    };
    let cache = if host.no_cache {
        None
    } else {
        host.cache_dir.clone().or_else(CompiledCache::default_dir).map(CompiledCache::new)
    };
    let pool = match (host.instance_slots, parallelism) {
        (InstanceSlots::Exactly(slots), _) => Some(InstancePool::with_slots(slots)),
        (InstanceSlots::Auto, Some(parallelism)) => Some(InstancePool::for_parallelism(parallelism)),
        (InstanceSlots::Auto, None) | (InstanceSlots::Off, _) => None,
    };
    Ok(match pool {
        Some(pool) => OperatorEngine::pooled(limits, cache, pool)?,
        None => OperatorEngine::new(limits, cache)?,
    })
}

/// The trusted keys `args` name (None when there are none): read now, KMS keys from KMS.
pub async fn trust(args: &TrustArgs, region: Option<&str>) -> Result<Option<Trust>> {
    if args.trust.is_empty() {
        return Ok(None);
    }
    let trust = Trust::load(&args.trust, region).await.context("--trust: a trusted key cannot be read")?;
    for key in trust.keys() {
        tracing::info!("trusting versions signed by key {} ({})", key.id().short(), key.source());
    }
    Ok(Some(trust))
}

/// The deployment at `target`, read and written as `role` if given.
pub async fn store(target: &str, region: Option<&str>, role: Option<&str>) -> Result<OperatorStore> {
    match target.parse::<Location>() {
        Ok(Location::S3 { bucket, key }) => Ok(OperatorStore::connect_as(&bucket, &key, region, role).await),
        Ok(other) => bail!("operators are deployed to S3: give s3://BUCKET/PREFIX, not {other}"),
        Err(e) => bail!("{target:?} is not a location: {e}"),
    }
}

/// The operator at `location`, in an engine for `parallelism` instances (None: one instance at a
/// time); for a deployment in S3 also the watch for its new versions (looking every
/// `watch_interval`). With `trust`, the deployed entry must be signed by one of
/// its keys, checked before the component is downloaded.
pub async fn load(
    location: &Location,
    settings: &[(String, String)],
    host: &HostArgs,
    parallelism: Option<usize>,
    region: Option<&str>,
    watch_interval: Duration,
    trust: Option<Trust>,
) -> Result<(LoadedOperator, Option<Watch>)> {
    let engine = engine(host, parallelism)?;
    let (loaded, watch) = match (location, trust) {
        (Location::S3 { bucket, key }, mut trust) => {
            let store = OperatorStore::connect(bucket, key, region).await;
            let (manifest, etag) = store.existing_manifest().await?;
            let current = &manifest.current;
            match &mut trust {
                Some(trust) => match trust.accept(current) {
                    Ok(key) => tracing::info!(
                        "operator {} at {} is signed by trusted key {} ({}), sequence {}",
                        current.digest.short(),
                        store.location(),
                        key.id().short(),
                        key.source(),
                        current.sequence
                    ),
                    Err(refusal) => bail!(
                        "the operator deployed at {} (sha256 {}) is refused ({}): {refusal}",
                        store.location(),
                        current.digest.short(),
                        refusal.reason()
                    ),
                },
                None => tracing::warn!(
                    "operator versions at {} are not verified: whatever its manifest names runs; give --trust (WEIR_TRUST) to run only versions signed by your keys",
                    store.location()
                ),
            }
            let artifact = store.deployed(current).await?;
            let loaded = engine.load(artifact, &current.settings_with(settings))?;
            let overrides = settings.to_vec();
            let watch = Watch {
                store,
                etag,
                running: manifest,
                overrides,
                engine,
                interval: watch_interval,
                trust,
                worker: weir::lease::worker::default_worker_id(),
                diffs: DiffDestination::Log,
            };
            (loaded, Some(watch))
        }
        (other, Some(_)) => bail!(
            "--trust runs only signed deployments, and {other} is not one: deploy it with `weir deploy OPERATOR.wasm s3://BUCKET/PREFIX --sign ...` and give --operator s3://BUCKET/PREFIX"
        ),
        (other, None) => (engine.load(resolve_local_operator(other)?, settings)?, None),
    };
    let cache = match loaded.cache_outcome() {
        CacheOutcome::Hit => "loaded from the compiled cache",
        CacheOutcome::Compiled => "compiled and cached",
        CacheOutcome::CompiledUncached => "compiled",
    };
    tracing::info!(
        "operator {} {} ({}, sha256 {}) {cache} in {:.1} ms",
        loaded.name(),
        loaded.version(),
        loaded.artifact().origin,
        loaded.artifact().digest.short(),
        loaded.load_time().as_secs_f64() * 1e3
    );
    Ok((loaded, watch))
}
