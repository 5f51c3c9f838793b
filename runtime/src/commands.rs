//! What each subcommand does: build the objects from the parsed command line (locations
//! resolved, operator loaded and checked) and run them. Everything that can be refused is
//! refused here, before any record is read.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::artifact::Artifact;
use crate::artifact::cache::{CacheOutcome, CompiledCache};
use crate::artifact::store::{OperatorStore, StoreError};
use crate::artifact::watch::Watch;
use crate::cli::{CheckArgs, HostArgs, RunArgs};
use crate::location::Location;
use crate::metrics::Metrics;
use crate::operator::{Limits, LoadedOperator, OperatorEngine};
use crate::pipeline::{self, Ending, Operators, PipelineOptions, RollbackPolicy};
use crate::sink::{DeadLetterWriter, FileSink, KinesisSink, Sink};
use crate::source::{FileSource, GeneratorSource, KinesisSource, KinesisSourceOptions, Source, now_ms};
use weir_kinesis::{Stream, aws};

/// The operators embedded in weir, by `builtin:` name.
pub const BUILTIN_OPERATORS: &[&str] = &["sliding-window-max"];

/// Resolve a file or built-in operator location to its bytes.
pub fn resolve_local_operator(location: &Location) -> Result<Artifact> {
    match location {
        Location::File(path) => Ok(Artifact::from_file(path)?),
        Location::Builtin(name) if name == "sliding-window-max" => Ok(Artifact::embedded_default()),
        Location::Builtin(name) => {
            bail!(
                "there is no built-in operator {name:?}; built-in operators: {}",
                BUILTIN_OPERATORS.join(", ")
            )
        }
        other => bail!(
            "operator location {other} is not supported: give a .wasm file, s3://BUCKET/PREFIX or builtin:sliding-window-max"
        ),
    }
}

/// The engine `host` asks for.
pub fn engine(host: &HostArgs) -> Result<OperatorEngine> {
    let limits = Limits { max_memory_bytes: host.max_memory_mib << 20, max_call_time: host.max_call_time.0 };
    let cache = if host.no_cache {
        None
    } else {
        host.cache_dir.clone().or_else(CompiledCache::default_dir).map(CompiledCache::new)
    };
    Ok(OperatorEngine::new(limits, cache)?)
}

/// The operator at `location`; for a deployment in S3 also the watch for its new versions
/// (looking every `watch_interval`).
async fn load(
    location: &Location,
    settings: &[(String, String)],
    host: &HostArgs,
    region: Option<&str>,
    watch_interval: Duration,
) -> Result<(LoadedOperator, Option<Watch>)> {
    let engine = engine(host)?;
    let (loaded, watch) = match location {
        Location::S3 { bucket, key } => {
            let store = OperatorStore::connect(bucket, key, region).await;
            let (manifest, etag) =
                store.manifest().await?.ok_or_else(|| StoreError::NothingDeployed(store.location()))?;
            let artifact = store.component(&manifest.current.digest).await?;
            let loaded = engine.load(artifact, &manifest.current.settings_with(settings))?;
            let overrides = settings.to_vec();
            let watch = Watch { store, etag, running: manifest, overrides, engine, interval: watch_interval };
            (loaded, Some(watch))
        }
        other => (engine.load(resolve_local_operator(other)?, settings)?, None),
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

/// `weir check`.
pub async fn check(args: CheckArgs) -> Result<()> {
    let (loaded, _) =
        load(&args.operator, &args.settings, &args.host, args.aws.region.as_deref(), Duration::MAX).await?;
    println!(
        "{}: operator {} {}, contract {}, sha256 {}",
        loaded.artifact().origin,
        loaded.name(),
        loaded.version(),
        crate::operator::CONTRACT,
        loaded.artifact().digest
    );
    Ok(())
}

/// `weir run`. Returns how the run ended.
pub async fn run(args: RunArgs, shutdown: impl std::future::Future<Output = ()>) -> Result<Ending> {
    let batch_size = args.batch_size as usize;
    let region = args.aws.region.as_deref();
    let (loaded, watch) =
        load(&args.operator, &args.settings, &args.host, region, args.deployment.watch_interval).await?;
    let metrics = Arc::new(Metrics::default());
    let operators = match watch {
        Some(watch) => {
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            tokio::spawn(watch.run(tx, metrics.clone()));
            let policy = RollbackPolicy {
                max_traps: args.deployment.rollback_after_traps,
                window: args.deployment.rollback_window,
            };
            Operators::watched(loaded, rx, policy)
        }
        None => Operators::from(loaded),
    };
    let mut kinesis = KinesisClient::default();
    let source = match &args.source {
        Location::Generator => Source::Generator(GeneratorSource {
            config: weir_producer::GeneratorConfig {
                tickers: args.generator.tickers.clone(),
                seed: args.generator.seed,
                start_time_ms: now_ms(),
                step_ms: 1,
            },
            rate: args.generator.rate,
            count: args.generator.count,
            batch_size,
        }),
        Location::Stdio => Source::File(FileSource::stdin(batch_size)),
        Location::File(path) => Source::File(FileSource::open(path.clone(), batch_size).await?),
        Location::Kinesis(stream) => {
            let (client, endpoint) = kinesis.get(args.aws.region.as_deref()).await;
            let options = KinesisSourceOptions {
                start: args.kinesis.start_position.clone(),
                poll_interval: args.kinesis.poll_interval,
                discovery_interval: args.kinesis.shard_discovery_interval,
                until_idle: args.kinesis.until_idle,
                batch_size,
            };
            let source =
                KinesisSource::connect(client, Stream(stream.clone()), endpoint, options, metrics.clone());
            Source::Kinesis(source.await?)
        }
        other => bail!("source {other} is not supported: use kinesis://STREAM, generator, a file or -"),
    };
    let sink = match &args.sink {
        Location::Stdio => Sink::File(FileSink::stdout()),
        Location::File(path) => Sink::File(FileSink::create(path.clone()).await?),
        Location::Kinesis(stream) => {
            let (client, endpoint) = kinesis.get(args.aws.region.as_deref()).await;
            let sink = KinesisSink::connect(client, Stream(stream.clone()), endpoint).await?;
            metrics.watch_sink(sink.stats());
            Sink::Kinesis(sink)
        }
        other => bail!("sink {other} is not supported: use a file, - or kinesis://STREAM"),
    };
    let dead_letters = match &args.dead_letter {
        Some(path) => DeadLetterWriter::append_to(path)?,
        None => DeadLetterWriter::stderr(),
    };
    if let Some(addr) = args.metrics_addr {
        let bound = crate::metrics::serve(addr, metrics.clone())
            .await
            .with_context(|| format!("cannot serve metrics at {addr} (--metrics-addr)"))?;
        tracing::info!("metrics at http://{bound}/metrics");
    }
    let options = PipelineOptions {
        tick_interval: args.tick_interval,
        stats_interval: args.stats_interval,
        ..PipelineOptions::default()
    };
    let started = std::time::Instant::now();
    let ending = pipeline::run(source, operators, sink, dead_letters, metrics.clone(), options, shutdown)
        .await
        .context("weir run stopped")?;
    let end = metrics.snapshot();
    tracing::info!(
        "{} after {:.1} s: {}",
        match ending {
            Ending::EndOfInput => "input ended",
            Ending::Stopped => "stopped",
        },
        started.elapsed().as_secs_f64(),
        end.summary(&Default::default(), started.elapsed())
    );
    Ok(ending)
}

/// One Kinesis client for the source and the sink: the AWS configuration (credential chain,
/// region) is loaded once.
#[derive(Default)]
struct KinesisClient(Option<(aws_sdk_kinesis::Client, String)>);

impl KinesisClient {
    /// The client and its endpoint (for messages), made on first use.
    async fn get(&mut self, region: Option<&str>) -> (aws_sdk_kinesis::Client, String) {
        if let Some(made) = &self.0 {
            return made.clone();
        }
        let config = aws::config(region).await;
        let made = (aws_sdk_kinesis::Client::new(&config), aws::kinesis_endpoint(&config));
        self.0 = Some(made.clone());
        made
    }
}
