//! `weir run --lease-table`: one worker of a lease group. The table is opened (created on
//! first use) and checked to serve this job, the worker joins, and the lease loop
//! ([`weir::lease::Coordinator`]) runs beside the pipeline. The pipeline runs in terms, each
//! over the shards held when it starts, restored from the checkpoints those leases name. A
//! change of leases ends the term gracefully (a final checkpoint recorded in each lease), the
//! leases to go are given up, and the next term starts. A stop signal ends the last term the
//! same way, gives every lease up and leaves the group, so the others take the shards at once.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use weir::checkpoint::CheckpointStore;
use weir::checkpoint::leased::{self, LeasedStore};
use weir::checkpoint::objects::Objects;
use weir::deployment::Versions;
use weir::lease::{Coordinator, CoordinatorOptions, LeaseError, LeaseTable};
use weir::location::Location;
use weir::metrics::Metrics;
use weir::pipeline::{self, Checkpoints, Ending, PipelineError, PipelineOptions};
use weir::sink::{DeadLetterWriter, Sink, SinkError};
use weir::source::{KinesisSource, Source};
use weir_kinesis::{Kinesis, ReadOptions, Stream};

use super::wiring::KinesisClient;
use crate::cli::RunArgs;

/// Attempts at a lease table call between terms before weir gives up.
const TABLE_ATTEMPTS: u32 = 8;

/// What a worker needs to run its terms.
pub struct Job {
    /// The command line.
    pub args: Arc<RunArgs>,
    /// The operator (and its watch), handed from term to term.
    pub versions: Versions,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// The pipeline's options.
    pub options: PipelineOptions,
    /// The sink and dead-letter destination checked at start, for the first term.
    pub first: Option<(Sink, DeadLetterWriter)>,
    /// The Kinesis client.
    pub kinesis: Kinesis,
}

/// This process's worker id: `HOST-PID-START`, unique per process.
fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".to_string());
    format!("{host}-{}-{}", std::process::id(), jiff::Timestamp::now().as_millisecond())
}

/// Try a lease table call a few times while it fails transiently.
async fn retrying<T, F: Future<Output = Result<T, LeaseError>>>(
    mut call: impl FnMut() -> F,
) -> Result<T, LeaseError> {
    let mut delays = weir::s3::read_retries();
    loop {
        match call().await {
            Err(e) if e.is_transient() && delays.attempts() + 1 < TABLE_ATTEMPTS => {
                let delay = delays.next_delay();
                tracing::warn!("{e}; trying again in {delay:?}");
                tokio::time::sleep(delay).await;
            }
            other => return other,
        }
    }
}

/// Whether a term ended because a lease moved (the worker goes on with what it still holds).
fn lease_moved(error: &PipelineError) -> bool {
    matches!(
        error,
        PipelineError::Checkpoint(weir::checkpoint::CheckpointError::LeaseLost { .. })
            | PipelineError::Sink(SinkError::Fenced)
    )
}

impl Job {
    /// Run terms until `stopping` resolves (or, with `--until-idle`, the shards held end).
    pub async fn run(mut self, stopping: impl Future<Output = ()> + Send + 'static) -> Result<Ending> {
        let args = self.args.clone();
        let region = args.aws.region.as_deref();
        let (Some(table_name), Some(location), Location::Kinesis(stream)) =
            (&args.leases.lease_table, &args.checkpoint.checkpoint, &args.source)
        else {
            bail!("--lease-table needs --checkpoint and a Kinesis source (kinesis://STREAM)");
        };
        let stream = Stream(stream.clone());
        let source_name = args.source.to_string();
        let objects = Objects::open(location, region).await.map_err(anyhow::Error::msg)?;
        let table = LeaseTable::connect(table_name, region).await;
        // A table just created by another worker, or a throttled or failing DynamoDB, is tried
        // again; a refusal (denied, another job's table) is not.
        let location = objects.location();
        retrying(|| table.open(&source_name, &location)).await?;
        let worker = args.leases.worker_id.clone().unwrap_or_else(default_worker_id);
        let options = CoordinatorOptions::new(worker.clone(), args.leases.failover_time);
        let coordinator = retrying(|| {
            Coordinator::start(
                table.clone(),
                Some((self.kinesis.clone(), stream.clone())),
                options.clone(),
                self.metrics.leases.clone(),
            )
        })
        .await?;
        tracing::info!("worker {worker} joined the lease group of {source_name} in {table_name}");
        let lease_loop = tokio::spawn(coordinator.clone().run());
        let result = self.terms(&coordinator, &objects, &stream, stopping).await;
        // However it ended, give the leases up (each holds its last checkpoint) and leave,
        // so that the others take the shards now rather than after the failover time.
        let left = retrying(|| coordinator.stop()).await;
        lease_loop.abort();
        let ending = result?;
        left.context("cannot give the leases up (the others take them after --failover-time)")?;
        Ok(ending)
    }

    async fn terms(
        &mut self,
        coordinator: &Arc<Coordinator>,
        objects: &Objects,
        stream: &Stream,
        stopping: impl Future<Output = ()> + Send + 'static,
    ) -> Result<Ending> {
        let args = self.args.clone();
        let source_name = args.source.to_string();
        let mut generation = coordinator.generation();
        let store = LeasedStore::new(objects.clone(), coordinator.clone());
        // Later terms' sinks use the client made at start, not a second one.
        let mut kinesis = KinesisClient::from(self.kinesis.clone());
        let stop = tokio::sync::watch::Sender::new(false);
        let stop_rx = stop.subscribe();
        tokio::spawn({
            let stop = stop.clone();
            async move {
                stopping.await;
                stop.send_replace(true);
            }
        });
        loop {
            generation.borrow_and_update();
            if *stop_rx.borrow() {
                return Ok(Ending::Stopped);
            }
            let term = coordinator.term_leases();
            if term.is_empty() {
                // Nothing to read (more workers than shards): wait for a lease, or with
                // --until-idle end once none came for that long and none is left to take.
                if !wait_for_leases(args.kinesis.until_idle, coordinator, &mut generation, &stop_rx).await? {
                    return Ok(Ending::EndOfInput);
                }
                continue;
            }
            let rows = retrying(|| coordinator.table.leases()).await?;
            let loaded = self.versions.initial();
            let operator = weir::checkpoint::operator_ref(&loaded);
            let next_id = store.next_id();
            let mut restored = leased::restore(objects, &term, &rows, &source_name, operator, next_id)
                .await
                .with_context(|| format!("cannot read the checkpoints of shards {}", names(&term)))?;
            if let Some(checkpoint) = &mut restored.checkpoint {
                super::resume::check_state(
                    checkpoint,
                    &loaded,
                    args.checkpoint.reset_state,
                    &objects.location(),
                )?;
            }
            let shards: BTreeSet<String> = term.iter().map(|l| l.shard.clone()).collect();
            tracing::info!("reading {} shards: {}", shards.len(), names(&term));
            let read = ReadOptions {
                start: args.kinesis.start_position.clone(),
                poll_interval: args.kinesis.poll_interval,
                discovery_interval: args.kinesis.shard_discovery_interval,
                until_idle: args.kinesis.until_idle,
                resume: restored.resume,
                only: Some(shards),
            };
            let batch_size = args.batch_size as usize;
            let source = KinesisSource::connect(
                self.kinesis.clone(),
                stream.clone(),
                read,
                batch_size,
                self.metrics.clone(),
            )
            .await?;
            let (sink, dead_letters) = match self.first.take() {
                Some(first) => first,
                None => (
                    super::wiring::sink(&args, &mut kinesis, &self.metrics).await?,
                    super::wiring::dead_letters(&args, &mut kinesis).await?,
                ),
            };
            let checkpoints = Checkpoints {
                store: CheckpointStore::Leased(store.clone()),
                interval: args.checkpoint.checkpoint_interval,
                source: source_name.clone(),
                restored: restored.checkpoint,
            };
            let options = PipelineOptions {
                fence: Some(coordinator.fence.clone()),
                partition_keyed: !args.leases.allow_spread_keys,
                children_read_elsewhere: true,
                ..self.options.clone()
            };
            let mut changed = generation.clone();
            let mut stop_wait = stop_rx.clone();
            let end_term = async move {
                tokio::select! {
                    _ = changed.changed() => {}
                    _ = stop_wait.wait_for(|s| *s) => {}
                }
            };
            let versions = std::mem::replace(&mut self.versions, Versions::from(loaded.clone()));
            let (ended, versions) = pipeline::run_term(
                Source::Kinesis(source),
                versions,
                sink,
                dead_letters,
                self.metrics.clone(),
                options,
                Some(checkpoints),
                end_term,
            )
            .await;
            self.versions = versions;
            match ended {
                Ok(Ending::Stopped) => {}
                Ok(Ending::EndOfInput) => {
                    let shard_ended = retrying(|| coordinator.after_term()).await?;
                    // A shard that ended has children to read, which the lease loop takes a
                    // moment after this: the input has not ended (the next term, or the wait
                    // for a lease with --until-idle, decides). Ending here left them unread.
                    if !shard_ended && !generation.has_changed().unwrap_or(false) {
                        return Ok(Ending::EndOfInput);
                    }
                    continue;
                }
                Err(e) if lease_moved(&e) => {
                    tracing::warn!("{e}: going on with the leases still held");
                    // Renewals failed: wait until the coordinator holds its leases again.
                    while !coordinator.fence.is_open() && !*stop_rx.borrow() {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                Err(e) => return Err(anyhow::Error::new(e).context("weir run stopped")),
            }
            retrying(|| coordinator.after_term()).await?;
        }
    }
}

/// With `--until-idle` (`until_idle`): wait until the leases change or a stop is asked for
/// (true), or for the idle time, then say whether a free lease is left to take (true: wait
/// on). Without it, wait as long as it takes.
async fn wait_for_leases(
    until_idle: Option<Duration>,
    coordinator: &Coordinator,
    generation: &mut tokio::sync::watch::Receiver<u64>,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Result<bool> {
    let mut stop = stop.clone();
    let changed = tokio::select! {
        _ = generation.changed() => true,
        _ = async { stop.wait_for(|s| *s).await.map(|_| ()) } => true,
        () = tokio::time::sleep(until_idle.unwrap_or(Duration::MAX)) => false,
    };
    Ok(changed || retrying(|| coordinator.free_leases_left()).await?)
}

/// Shard ids, for messages.
fn names(leases: &[weir::lease::Lease]) -> String {
    leases.iter().map(|l| l.shard.as_str()).collect::<Vec<_>>().join(", ")
}
