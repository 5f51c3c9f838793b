//! A lease group's worker (`weir run --lease-table`): it joins the group (the table opened,
//! created on first use, and checked to serve this job), runs the lease loop
//! ([`Coordinator`]) beside its terms, and runs one term after another, each over the shards
//! it holds when the term starts. A change of leases ends the term gracefully (its final
//! checkpoint recorded in each lease), the leases to go are given up, and the next term
//! starts. A stop ends the last term the same way, gives every lease up and leaves the group,
//! so the others take the shards at once rather than after the failover time.
//!
//! What a term does is a [`Terms`]: [`PipelineTerms`] runs the pipeline over the term's shards,
//! restored from the checkpoints their leases name ([`super::checkpoints`]); the leases bench
//! runs the same loop with terms that only hand their leases back.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use weir_aws::{Policy, Service};
use weir_kinesis::{Kinesis, ReadOptions, Stream};

use super::checkpoints::{self, LeasedStore};
use super::{Coordinator, CoordinatorOptions, Lease, LeaseError, LeaseStore};
use crate::checkpoint::resume::StateError;
use crate::checkpoint::{CheckpointError, CheckpointStore, check_state, operator_ref};
use crate::deployment::Versions;
use crate::metrics::{LeaseMetrics, Metrics};
use crate::objects::Objects;
use crate::pipeline::{Checkpoints, Ending, Pipeline, PipelineError, PipelineOptions};
use crate::sink::{DeadLetterWriter, Sink, SinkError};
use crate::source::{KinesisSource, Source, SourceError};

/// Lease table calls between terms: eight attempts in all before the worker gives up.
const TABLE_RETRY: Policy = Policy::READ.attempts(8);

/// An error of any kind, from the code that makes a term's outputs.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A future that ends a term when it resolves.
pub type TermEnd = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Why a worker stopped.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The lease table refused or could not be reached.
    #[error(transparent)]
    Lease(#[from] LeaseError),
    /// The leases could not be given up at the end.
    #[error("cannot give the leases up (the others take them after --failover-time)")]
    Leave(#[source] LeaseError),
    /// The checkpoints a term goes on from could not be read.
    #[error("cannot read the checkpoints of shards {shards}")]
    Restore {
        /// The term's shards.
        shards: String,
        /// Why.
        source: CheckpointError,
    },
    /// The operator cannot take the state a term goes on from.
    #[error(transparent)]
    State(#[from] StateError),
    /// The source of a term could not be opened.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A term's sink or dead-letter destination could not be opened.
    #[error(transparent)]
    Outputs(BoxError),
    /// A term's pipeline failed.
    #[error("weir run stopped")]
    Pipeline(#[source] PipelineError),
}

/// This process's worker id: `HOST-PID-START`, unique per process.
pub fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".to_string());
    format!("{host}-{}-{}", std::process::id(), jiff::Timestamp::now().as_millisecond())
}

/// Try a lease table call a few times while it fails transiently (`what` it does, for the log).
async fn retrying<T, F: Future<Output = Result<T, LeaseError>>>(
    what: &str,
    call: impl FnMut() -> F,
) -> Result<T, LeaseError> {
    weir_aws::retry(Service::DynamoDb, TABLE_RETRY, what, call).await
}

/// What a worker does in each term.
#[async_trait::async_trait]
pub trait Terms: Send {
    /// Read the shards of `term` (the leases held now; `rows`: every lease as the table has it
    /// now) until their input ends or `end` resolves (the leases changed, or a stop was asked
    /// for), and say how the term ended.
    async fn run(&mut self, term: &[Lease], rows: &[Lease], end: TermEnd) -> Result<Ending, WorkerError>;
}

/// A member of a lease group, its lease loop running.
pub struct Worker {
    coordinator: Arc<Coordinator>,
    lease_loop: tokio::task::JoinHandle<()>,
    until_idle: Option<Duration>,
}

impl Worker {
    /// Join the group in `table` that reads `source` with checkpoints at `checkpoints` (the
    /// table created on first use; a table just created by another worker, or a throttled or
    /// failing DynamoDB, is tried again; a refusal, such as another job's table, is not), and
    /// start the lease loop. `stream` is listed for new shards (None: the rows are added by
    /// someone else). With `until_idle`, the worker ends once its shards went idle (or ended)
    /// and no lease is left free for it to take.
    pub async fn join(
        table: Arc<dyn LeaseStore>,
        source: &str,
        checkpoints: &str,
        stream: Option<(Kinesis, Stream)>,
        options: CoordinatorOptions,
        until_idle: Option<Duration>,
        metrics: LeaseMetrics,
    ) -> Result<Self, LeaseError> {
        retrying("open the lease table", || table.open(source, checkpoints)).await?;
        let coordinator = retrying("join the lease group", || {
            Coordinator::start(table.clone(), stream.clone(), options.clone(), metrics.clone())
        })
        .await?;
        tracing::info!(
            "worker {} joined the lease group of {source} in {}",
            coordinator.worker(),
            table.name()
        );
        let lease_loop = tokio::spawn(coordinator.clone().run());
        Ok(Self { coordinator, lease_loop, until_idle })
    }

    /// The lease loop's side: the leases held, the write deadline.
    pub fn coordinator(&self) -> &Arc<Coordinator> {
        &self.coordinator
    }

    /// Run terms until `stopping` resolves (or, with `until_idle`, the shards held end), then
    /// give the leases up (each holds its last checkpoint) and leave, however the terms ended.
    pub async fn run(
        self,
        terms: &mut dyn Terms,
        stopping: impl Future<Output = ()> + Send + 'static,
    ) -> Result<Ending, WorkerError> {
        let result = self.terms(terms, stopping).await;
        let left = retrying("hand back the leases", || self.coordinator.stop()).await;
        let ending = result?;
        left.map_err(WorkerError::Leave)?;
        Ok(ending)
    }

    async fn terms(
        &self,
        terms: &mut dyn Terms,
        stopping: impl Future<Output = ()> + Send + 'static,
    ) -> Result<Ending, WorkerError> {
        let coordinator = &self.coordinator;
        let mut generation = coordinator.generation();
        let stop = watch::Sender::new(false);
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
                if !self.wait_for_leases(&mut generation, &stop_rx).await? {
                    return Ok(Ending::EndOfInput);
                }
                continue;
            }
            let rows = retrying("read the leases", || coordinator.table.leases()).await?;
            let mut changed = generation.clone();
            let mut stop_wait = stop_rx.clone();
            let end = Box::pin(async move {
                tokio::select! {
                    _ = changed.changed() => {}
                    _ = stop_wait.wait_for(|s| *s) => {}
                }
            });
            match terms.run(&term, &rows, end).await {
                Ok(Ending::Stopped) => {}
                Ok(Ending::EndOfInput) => {
                    let shard_ended =
                        retrying("update the leases after a term", || coordinator.after_term()).await?;
                    // A shard that ended has children to read, which the lease loop takes a
                    // moment after this: the input has not ended (the next term, or the wait
                    // for a lease with --until-idle, decides). Ending here left them unread.
                    if shard_ended || generation.has_changed().unwrap_or(false) {
                        continue;
                    }
                    // Every shard held went idle. So did the input, unless a lease is still
                    // free (a silent worker's share, a lease not yet taken by the lease loop):
                    // then wait for it as a worker holding nothing does.
                    let free = retrying("look for free leases", || coordinator.free_leases_left()).await?;
                    if !free || !self.wait_for_leases(&mut generation, &stop_rx).await? {
                        return Ok(Ending::EndOfInput);
                    }
                    continue;
                }
                Err(WorkerError::Pipeline(e)) if lease_moved(&e) => {
                    tracing::warn!("{e}: going on with the leases still held");
                    // Renewals failed: wait until the coordinator holds its leases again.
                    while !coordinator.deadline.is_open() && !*stop_rx.borrow() {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                Err(e) => return Err(e),
            }
            retrying("update the leases after a term", || coordinator.after_term()).await?;
        }
    }

    /// With `until_idle`: wait until the leases change or a stop is asked for (true), or for
    /// the idle time, then say whether a free lease is left to take (true: wait on). Without
    /// it, wait as long as it takes.
    async fn wait_for_leases(
        &self,
        generation: &mut watch::Receiver<u64>,
        stop: &watch::Receiver<bool>,
    ) -> Result<bool, LeaseError> {
        let mut stop = stop.clone();
        let changed = tokio::select! {
            _ = generation.changed() => true,
            _ = async { stop.wait_for(|s| *s).await.map(|_| ()) } => true,
            () = tokio::time::sleep(self.until_idle.unwrap_or(Duration::MAX)) => false,
        };
        Ok(changed || retrying("look for free leases", || self.coordinator.free_leases_left()).await?)
    }
}

impl Drop for Worker {
    /// The lease loop ends with the worker, however it ends (a task aborted included), as in a
    /// process that dies.
    fn drop(&mut self) {
        self.lease_loop.abort();
    }
}

/// Whether a term ended because a lease moved (the worker goes on with what it still holds).
fn lease_moved(error: &PipelineError) -> bool {
    matches!(
        error,
        PipelineError::Checkpoint(CheckpointError::LeaseLost { .. })
            | PipelineError::Sink(SinkError::DeadlinePassed)
    )
}

/// Opens each term's result sink and dead-letter destination.
#[async_trait::async_trait]
pub trait TermOutputs: Send {
    /// The sink and the dead-letter destination for the next term.
    async fn open(&mut self) -> Result<(Sink, DeadLetterWriter), BoxError>;
}

/// How a worker reads and checkpoints its terms.
pub struct TermSettings {
    /// Where the checkpoints are.
    pub objects: Objects,
    /// The stream.
    pub stream: Stream,
    /// The Kinesis client, shared by every term.
    pub kinesis: Kinesis,
    /// How shards are read; each term sets `resume` and `only`.
    pub read: ReadOptions,
    /// Records per batch.
    pub batch_size: usize,
    /// How often a checkpoint is taken.
    pub checkpoint_interval: Duration,
    /// Drop the checkpoints' state (keep their positions).
    pub reset_state: bool,
    /// Refuse records whose partition key is not their grouping key.
    pub partition_keyed: bool,
}

/// Terms that run the pipeline over their shards, restored from the checkpoints their leases
/// name, with one operator (and its watch) from term to term.
pub struct PipelineTerms {
    settings: TermSettings,
    coordinator: Arc<Coordinator>,
    store: LeasedStore,
    versions: Versions,
    metrics: Arc<Metrics>,
    options: PipelineOptions,
    outputs: Box<dyn TermOutputs>,
}

impl PipelineTerms {
    /// Terms of `worker` with `settings`, the operator `versions`, the pipeline's `options`,
    /// and each term's sink and dead letters from `outputs`.
    pub fn new(
        worker: &Worker,
        settings: TermSettings,
        versions: Versions,
        metrics: Arc<Metrics>,
        options: PipelineOptions,
        outputs: Box<dyn TermOutputs>,
    ) -> Self {
        let coordinator = worker.coordinator.clone();
        let store = LeasedStore::new(settings.objects.clone(), coordinator.clone());
        Self { settings, coordinator, store, versions, metrics, options, outputs }
    }
}

#[async_trait::async_trait]
impl Terms for PipelineTerms {
    async fn run(&mut self, term: &[Lease], rows: &[Lease], end: TermEnd) -> Result<Ending, WorkerError> {
        let settings = &self.settings;
        let source_name = settings.stream.to_string();
        let loaded = self.versions.initial();
        let operator = operator_ref(&loaded);
        let mut restored =
            checkpoints::restore(&settings.objects, term, rows, &source_name, operator, self.store.next_id())
                .await
                .map_err(|source| WorkerError::Restore { shards: names(term), source })?;
        if let Some(checkpoint) = &mut restored.checkpoint {
            check_state(checkpoint, &loaded, settings.reset_state, &settings.objects.location())?;
        }
        let shards: BTreeSet<String> = term.iter().map(|l| l.shard.clone()).collect();
        tracing::info!("reading {} shards: {}", shards.len(), names(term));
        let read = ReadOptions { resume: restored.resume, only: Some(shards), ..settings.read.clone() };
        let source = KinesisSource::connect(
            settings.kinesis.clone(),
            settings.stream.clone(),
            read,
            settings.batch_size,
            self.metrics.clone(),
        )
        .await?;
        let (sink, dead_letters) = self.outputs.open().await.map_err(WorkerError::Outputs)?;
        let checkpoints = Checkpoints {
            store: Box::new(self.store.clone()),
            interval: settings.checkpoint_interval,
            source: source_name,
            restored: restored.checkpoint,
        };
        let options = PipelineOptions {
            write_deadline: Some(self.coordinator.deadline.clone()),
            partition_keyed: settings.partition_keyed,
            children_read_elsewhere: true,
            ..self.options.clone()
        };
        let versions = std::mem::replace(&mut self.versions, Versions::from(loaded));
        let (ended, versions) =
            Pipeline::new(Source::Kinesis(Box::new(source)), versions, sink, dead_letters)
                .metrics(self.metrics.clone())
                .options(options)
                .checkpoints(Some(checkpoints))
                .run_term(end)
                .await;
        self.versions = versions;
        ended.map_err(WorkerError::Pipeline)
    }
}

/// Shard ids, for messages.
fn names(leases: &[Lease]) -> String {
    leases.iter().map(|l| l.shard.as_str()).collect::<Vec<_>>().join(", ")
}
