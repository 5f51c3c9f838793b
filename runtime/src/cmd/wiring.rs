//! What `weir run` reads from and writes to, built from its arguments and refused before
//! anything runs if it cannot work: the source, the result sink, the dead-letter destination,
//! and the one Kinesis client they share. The single run and every term of a lease group's
//! worker build them here ([`TermOutputsFromArgs`] for the terms).

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Result, bail};
use weir::clock::now_ms;
use weir::lease::worker::{BoxError, TermOutputs};
use weir::location::Location;
use weir::metrics::Metrics;
use weir::sink::{DeadLetterWriter, FileSink, KinesisSink, Sink};
use weir::source::{FileSource, GeneratorSource, KinesisSource, Source};
use weir_aws as aws;
use weir_kinesis::{Consumer, Kinesis, ReadOptions, Resume, Stream};

use crate::cli::RunArgs;

/// The source of `args` (a Kinesis stream resumed from `restored`, if any, read through
/// `consumer` if one is given).
pub(super) async fn source(
    args: &RunArgs,
    restored: Option<&weir::checkpoint::Checkpoint>,
    consumer: Option<&Consumer>,
    kinesis: &mut KinesisClient,
    metrics: &Arc<Metrics>,
) -> Result<Source> {
    let batch_size = args.batch_size as usize;
    let region = args.aws.region.as_deref();
    Ok(match &args.source {
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
            let resume = restored.map(|c| weir::checkpoint::resume_positions(&c.meta.shards));
            let options = read_options(args, resume.unwrap_or_default(), consumer);
            let kinesis = kinesis.get(region).await;
            let source =
                KinesisSource::connect(kinesis, Stream(stream.clone()), options, batch_size, metrics.clone());
            Source::Kinesis(Box::new(source.await?))
        }
        other => bail!("source {other} is not supported: use kinesis://STREAM, generator, a file or -"),
    })
}

/// How `args` reads Kinesis, resuming shards at `resume` (the others at `--start-position`),
/// through `consumer`'s subscriptions if one is given.
pub(super) fn read_options(
    args: &RunArgs,
    resume: BTreeMap<String, Resume>,
    consumer: Option<&Consumer>,
) -> ReadOptions {
    ReadOptions {
        start: args.kinesis.start_position.clone(),
        poll_interval: args.kinesis.poll_interval,
        discovery_interval: args.kinesis.shard_discovery_interval,
        until_idle: args.kinesis.until_idle,
        resume,
        only: None,
        fan_out: consumer.map(|c| args.kinesis.fan_out(c)),
    }
}

/// The enhanced fan-out consumer of `args` (`--efo-consumer`), registered or found, and ACTIVE.
pub(super) async fn consumer(args: &RunArgs, kinesis: &mut KinesisClient) -> Result<Option<Consumer>> {
    let Some(name) = &args.kinesis.efo_consumer else { return Ok(None) };
    let Location::Kinesis(stream) = &args.source else {
        bail!(
            "--efo-consumer reads a Kinesis stream through enhanced fan-out: give --source kinesis://STREAM"
        );
    };
    let kinesis = kinesis.get(args.aws.region.as_deref()).await;
    Ok(Some(Consumer::register(&kinesis, &Stream(stream.clone()), name).await?))
}

/// The result sink of `args`, checked to exist.
pub(super) async fn sink(args: &RunArgs, kinesis: &mut KinesisClient, metrics: &Metrics) -> Result<Sink> {
    let region = args.aws.region.as_deref();
    Ok(match &args.sink {
        Location::Stdio => Sink::File(FileSink::stdout()),
        Location::File(_) if args.leases.lease_table.is_some() => {
            bail!(
                "a lease group writes its results to kinesis://STREAM or -, not to a file each worker would overwrite"
            )
        }
        Location::File(path) => Sink::File(FileSink::create(path.clone()).await?),
        Location::Kinesis(stream) => {
            let sink = KinesisSink::connect(kinesis.get(region).await, Stream(stream.clone())).await?;
            match metrics.watched_sink() {
                // A lease group's later terms count on.
                Some(stats) => Sink::Kinesis(sink.counting_into(stats)),
                None => {
                    metrics.watch_sink(sink.stats());
                    Sink::Kinesis(sink)
                }
            }
        }
        other => bail!("sink {other} is not supported: use a file, - or kinesis://STREAM"),
    })
}

/// The dead-letter destination of `args`, checked to exist.
pub(super) async fn dead_letters(args: &RunArgs, kinesis: &mut KinesisClient) -> Result<DeadLetterWriter> {
    let region = args.aws.region.as_deref();
    Ok(match &args.dead_letter {
        None | Some(Location::Stdio) => DeadLetterWriter::stderr(),
        Some(Location::File(path)) => DeadLetterWriter::append_to(path)?,
        Some(Location::Kinesis(stream)) => {
            DeadLetterWriter::kinesis(kinesis.get(region).await, Stream(stream.clone())).await?
        }
        Some(Location::S3 { bucket, key }) => DeadLetterWriter::s3(bucket, key, region).await?,
        Some(other) => {
            bail!(
                "--dead-letter {other} is not supported: give a file, -, kinesis://STREAM or s3://BUCKET/PREFIX"
            )
        }
    })
}

/// One Kinesis client for the source and the sink: the AWS configuration (credential chain,
/// region) is loaded once.
#[derive(Default)]
pub(super) struct KinesisClient(Option<Kinesis>);

impl From<Kinesis> for KinesisClient {
    fn from(made: Kinesis) -> Self {
        Self(Some(made))
    }
}

impl KinesisClient {
    /// The client, made on first use.
    pub(super) async fn get(&mut self, region: Option<&str>) -> Kinesis {
        if let Some(made) = &self.0 {
            return made.clone();
        }
        let made = Kinesis::new(&aws::config(region).await);
        self.0 = Some(made.clone());
        made
    }
}

/// A lease group worker's outputs: the sink and dead-letter destination checked at start for
/// its first term, new ones (on the same Kinesis client) for each later term.
pub(super) struct TermOutputsFromArgs {
    /// The command line.
    pub args: Arc<RunArgs>,
    /// The client made at start.
    pub kinesis: KinesisClient,
    /// The metrics (a later term's sink counts on where the first one counted).
    pub metrics: Arc<Metrics>,
    /// The outputs checked at start, for the first term.
    pub first: Option<(Sink, DeadLetterWriter)>,
}

#[async_trait::async_trait]
impl TermOutputs for TermOutputsFromArgs {
    async fn open(&mut self) -> Result<(Sink, DeadLetterWriter), BoxError> {
        if let Some(first) = self.first.take() {
            return Ok(first);
        }
        let sink = sink(&self.args, &mut self.kinesis, &self.metrics).await?;
        let dead_letters = dead_letters(&self.args, &mut self.kinesis).await?;
        Ok((sink, dead_letters))
    }
}
