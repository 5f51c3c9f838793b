//! `weir run`: the source, the operator (and, for a deployment, its watch), the sink, the
//! dead-letter destination and the metrics endpoint, each refused before anything runs if it
//! cannot work; then the pipeline until the input ends or a signal stops it.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use weir::deployment::{RollbackPolicy, Versions};
use weir::location::Location;
use weir::metrics::emf::EmfFormat;
use weir::metrics::{Metrics, StatsFormat};
use weir::pipeline::{self, Ending, PipelineOptions};
use weir::sink::{DeadLetterWriter, FileSink, KinesisSink, Sink};
use weir::source::{FileSource, GeneratorSource, KinesisSource, Source, now_ms};
use weir_kinesis::{Kinesis, ReadOptions, Stream, aws};

use crate::cli::{MetricsFormat, RunArgs};

/// `weir run`. Returns how the run ended.
pub async fn run(args: RunArgs, shutdown: impl std::future::Future<Output = ()>) -> Result<Ending> {
    let batch_size = args.batch_size as usize;
    let region = args.aws.region.as_deref();
    let (loaded, watch) =
        super::load(&args.operator, &args.settings, &args.host, region, args.deployment.watch_interval)
            .await?;
    let metrics = Arc::new(Metrics::default());
    let grouping = loaded.grouping().clone();
    let versions = match watch {
        Some(watch) => {
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            tokio::spawn(watch.run(tx, metrics.clone()));
            let policy = RollbackPolicy {
                max_traps: args.deployment.rollback_after_traps,
                window: args.deployment.rollback_window,
            };
            Versions::watched(loaded, rx, policy)
        }
        None => Versions::from(loaded),
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
            let options = ReadOptions {
                start: args.kinesis.start_position.clone(),
                poll_interval: args.kinesis.poll_interval,
                discovery_interval: args.kinesis.shard_discovery_interval,
                until_idle: args.kinesis.until_idle,
            };
            let kinesis = kinesis.get(region).await;
            let source =
                KinesisSource::connect(kinesis, Stream(stream.clone()), options, batch_size, metrics.clone());
            Source::Kinesis(source.await?)
        }
        other => bail!("source {other} is not supported: use kinesis://STREAM, generator, a file or -"),
    };
    let sink = match &args.sink {
        Location::Stdio => Sink::File(FileSink::stdout()),
        Location::File(path) => Sink::File(FileSink::create(path.clone()).await?),
        Location::Kinesis(stream) => {
            let sink = KinesisSink::connect(kinesis.get(region).await, Stream(stream.clone())).await?;
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
        let bound = weir::metrics::serve(addr, metrics.clone())
            .await
            .with_context(|| format!("cannot serve metrics at {addr} (--metrics-addr)"))?;
        tracing::info!("metrics at http://{bound}/metrics");
    }
    let stats_format = match args.metrics_format {
        MetricsFormat::Log => StatsFormat::Log,
        MetricsFormat::Emf => {
            StatsFormat::Emf(EmfFormat { dimensions: vec![("Source".to_string(), args.source.to_string())] })
        }
    };
    let parallelism = match args.parallelism {
        Some(n) => usize::from(n),
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    tracing::info!("{parallelism} operator instances; records go to the one that owns their {}", grouping);
    let options = PipelineOptions {
        parallelism,
        idle_after: args.idle_after,
        tick_interval: args.tick_interval,
        stats_interval: args.stats_interval,
        stats_format,
        ..PipelineOptions::default()
    };
    let started = std::time::Instant::now();
    let ending = pipeline::run(source, versions, sink, dead_letters, metrics.clone(), options, shutdown)
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
struct KinesisClient(Option<Kinesis>);

impl KinesisClient {
    /// The client, made on first use.
    async fn get(&mut self, region: Option<&str>) -> Kinesis {
        if let Some(made) = &self.0 {
            return made.clone();
        }
        let made = Kinesis::new(&aws::config(region).await);
        self.0 = Some(made.clone());
        made
    }
}
