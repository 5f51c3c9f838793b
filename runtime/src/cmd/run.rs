//! `weir run`: the source, the operator (and, for a deployment, its watch), the sink, the
//! dead-letter destination, the checkpoint location and the metrics endpoint, each refused
//! before anything runs if it cannot work; the checkpoint to go on from; then the pipeline
//! until the input ends or a signal stops it, with the background tasks supervised.

use std::future::Future;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use tokio::task::JoinSet;
use weir::checkpoint::CheckpointStore;
use weir::deployment::{DiffDestination, RollbackPolicy, Versions};
use weir::lease::worker::{PipelineTerms, TermSettings, default_worker_id};
use weir::lease::{CoordinatorOptions, LeaseTable, Worker};
use weir::location::Location;
use weir::metrics::emf::EmfFormat;
use weir::metrics::{Metrics, SlotUsage, StatsFormat};
use weir::objects::Objects;
use weir::pipeline::{Checkpoints, Ending, Pipeline, PipelineOptions};
use weir_kinesis::{ReadOptions, Stream};

use super::signals::Signals;
use super::wiring::{KinesisClient, TermOutputsFromArgs, consumer, dead_letters, read_options, sink, source};
use crate::cli::{MetricsFormat, RunArgs};

/// `weir run` on a runtime of its own, sized for its operator instances
/// ([`weir::pipeline::runtime`]). Returns how the run ended.
pub fn run_blocking(args: RunArgs) -> Result<Ending> {
    let runtime =
        weir::pipeline::runtime(parallelism(args.parallelism)).context("cannot start the async runtime")?;
    runtime.block_on(run(args))
}

/// Operator instances for `--parallelism` (default: the machine's available cores).
fn parallelism(arg: Option<u16>) -> usize {
    arg.map_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()), usize::from)
}

/// `weir run`. Returns how the run ended.
async fn run(mut args: RunArgs) -> Result<Ending> {
    // A lease group's member is named once: in the lease table and in its metrics.
    if args.leases.lease_table.is_some() && args.leases.worker_id.is_none() {
        args.leases.worker_id = Some(default_worker_id());
    }
    let args = Arc::new(args);
    let signals = Signals::listen();
    let region = args.aws.region.as_deref();
    let trust = super::trust(&args.deployment.trust, region).await?;
    let parallelism = parallelism(args.parallelism);
    let (loaded, mut watch) = super::load(
        &args.operator,
        &args.settings,
        &args.host,
        Some(parallelism),
        region,
        args.deployment.watch_interval,
        trust,
    )
    .await?;
    let metrics = Arc::new(Metrics::default());
    let pool_usage = loaded.pool_usage();
    metrics.watch_instance_slots(move || {
        pool_usage().map(|u| SlotUsage {
            slots: u64::from(u.slots),
            in_use: u.instances,
            resident_bytes: u.resident_bytes as u64,
        })
    });
    let grouping = loaded.grouping().clone();
    // Tasks beside the pipeline, by task id: a panic in any of them stops weir.
    let mut background: JoinSet<()> = JoinSet::new();
    let mut names = std::collections::HashMap::new();
    let leased = args.leases.lease_table.is_some();
    if leased && args.checkpoint.checkpoint.is_none() {
        bail!(
            "--lease-table needs --checkpoint (a directory or s3://BUCKET/PREFIX, the same for every worker): a lease moves a shard with its checkpoint"
        );
    }
    let (mut store, restored) = match &args.checkpoint.checkpoint {
        Some(_) if leased => (None, None),
        Some(location) => {
            let (store, restored) = super::resume::open(location, &args, &loaded, region).await?;
            (Some(store), restored)
        }
        None => (None, None),
    };
    if let (Some(watch), Some(sequence)) =
        (&mut watch, restored.as_ref().and_then(|c| c.meta.operator.sequence))
        && let Err(refusal) = watch.resumed(sequence)
    {
        bail!(
            "the operator deployed at {} is refused ({}): {refusal} (checkpoint {} ran deployment sequence {sequence})",
            watch.store.location(),
            refusal.reason(),
            restored.as_ref().map_or(0, |c| c.meta.id)
        );
    }
    let versions = match watch {
        Some(mut watch) => {
            // A lease group member's evidence about a candidate goes under its worker id.
            if let Some(id) = &args.leases.worker_id {
                watch.worker.clone_from(id);
            }
            if let Some(file) = &args.deployment.shadow_diff {
                watch.diffs = DiffDestination::File(file.clone());
            }
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            let (candidates_tx, candidates) = tokio::sync::mpsc::channel(1);
            let metrics = metrics.clone();
            let task = background.spawn(watch.run(tx, candidates_tx, metrics));
            names.insert(task.id(), "the watch for new operator versions");
            let policy = RollbackPolicy {
                max_traps: args.deployment.rollback_after_traps,
                window: args.deployment.rollback_window,
            };
            Versions::watched(loaded, rx, policy).with_candidates(candidates)
        }
        None => Versions::from(loaded),
    };
    let mut kinesis = KinesisClient::default();
    let sink = sink(&args, &mut kinesis, &metrics).await?;
    let dead_letters = dead_letters(&args, &mut kinesis).await?;
    let consumer = consumer(&args, &mut kinesis).await?;
    if let Some(addr) = args.metrics_addr {
        let (bound, server) = weir::metrics::serve(addr, metrics.clone())
            .await
            .with_context(|| format!("cannot serve metrics at {addr} (--metrics-addr)"))?;
        tracing::info!("metrics at http://{bound}/metrics");
        let task = background.spawn(async move {
            if let Err(e) = server.await {
                std::panic::resume_unwind(e.into_panic());
            }
        });
        names.insert(task.id(), "the metrics server");
    }
    let stats_format = match args.metrics_format {
        MetricsFormat::Log => StatsFormat::Log,
        MetricsFormat::Emf => {
            let dimensions = vec![("Source".to_string(), args.source.to_string())];
            let worker = args.leases.lease_table.as_ref().and(args.leases.worker_id.clone());
            StatsFormat::Emf(EmfFormat { dimensions, worker })
        }
    };
    tracing::info!("{parallelism} operator instances; records go to the one that owns their {}", grouping);
    if args.idle_after.is_some() {
        tracing::warn!(
            "--idle-after (WEIR_IDLE_AFTER) has no effect any more and will be removed: a shard stops holding back the watermark once an empty read finds it caught up"
        );
    }
    let options = PipelineOptions {
        parallelism,
        tick_interval: args.tick_interval,
        stats_interval: args.stats_interval,
        stats_format,
        on_operator_error: args.on_operator_error.into(),
        ..PipelineOptions::default()
    };
    let started = std::time::Instant::now();
    // The pipeline on a task of its own, so that signals are heard even while an operator call
    // holds its thread.
    let stopping = signals.clone().nth(1);
    let mut run: tokio::task::JoinHandle<Result<Ending>> = if leased {
        let outputs = TermOutputsFromArgs {
            args: args.clone(),
            kinesis: KinesisClient::from(kinesis.get(region).await),
            metrics: metrics.clone(),
            first: Some((sink, dead_letters)),
        };
        let read = read_options(&args, Default::default(), consumer.as_ref());
        let group = lease_group(args.clone(), versions, metrics.clone(), options, outputs, read, stopping);
        tokio::spawn(group)
    } else {
        let source = source(&args, restored.as_ref(), consumer.as_ref(), &mut kinesis, &metrics).await?;
        let checkpoints = store.take().map(|store| Checkpoints {
            store: Box::new(store) as Box<dyn CheckpointStore>,
            interval: args.checkpoint.checkpoint_interval,
            source: args.source.to_string(),
            restored,
        });
        let run = Pipeline::new(source, versions, sink, dead_letters)
            .metrics(metrics.clone())
            .options(options)
            .checkpoints(checkpoints)
            .run(stopping);
        tokio::spawn(async move { run.await.context("weir run stopped") })
    };
    let at_once = async {
        signals.clone().nth(1).await;
        tokio::select! {
            () = signals.clone().nth(2) => "a second signal came",
            () = tokio::time::sleep(args.checkpoint.shutdown_timeout) => "--shutdown-timeout passed",
        }
    };
    let ending = tokio::select! {
        ended = &mut run => ended.context("the pipeline task failed")??,
        why = at_once => exit_now(&format!(
            "stopped at once: {why} before the results read so far were written{}",
            match metrics.checkpoints.last_id.get() {
                0 if args.checkpoint.checkpoint.is_some() => ": no checkpoint was completed; a restart begins again".to_string(),
                0 => String::new(),
                id => format!(": a restart goes on from checkpoint {id}, producing the results since again"),
            }
        )),
        // The watch ends normally once the pipeline is done with it; a panic is a fault.
        Some(Err(failed)) = background.join_next_with_id() => {
            let what = names.get(&failed.id()).copied().unwrap_or("a background task");
            exit_now(&format!("{what} failed ({failed}): weir stops rather than run without it"));
        }
    };
    if let (Some(consumer), true, Location::Kinesis(stream)) =
        (&consumer, args.kinesis.efo_deregister, &args.source)
    {
        let kinesis = kinesis.get(region).await;
        if let Err(e) = consumer.deregister(&kinesis, &Stream(stream.clone())).await {
            tracing::warn!("cannot deregister consumer {} (--efo-deregister): {e}", consumer.name);
        }
    }
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

/// `weir run --lease-table`: join the group, run the pipeline in terms over the shards held
/// (each read as `read` says), leave at the end.
async fn lease_group(
    args: Arc<RunArgs>,
    versions: Versions,
    metrics: Arc<Metrics>,
    options: PipelineOptions,
    mut outputs: TermOutputsFromArgs,
    read: ReadOptions,
    stopping: impl Future<Output = ()> + Send + 'static,
) -> Result<Ending> {
    let region = args.aws.region.as_deref();
    let (Some(table), Some(location), Location::Kinesis(stream)) =
        (&args.leases.lease_table, &args.checkpoint.checkpoint, &args.source)
    else {
        bail!("--lease-table needs --checkpoint and a Kinesis source (kinesis://STREAM)");
    };
    let stream = Stream(stream.clone());
    let kinesis = outputs.kinesis.get(region).await;
    let objects = Objects::open(location, region).await.map_err(anyhow::Error::msg)?;
    let id = args.leases.worker_id.clone().unwrap_or_else(default_worker_id);
    let worker = Worker::join(
        Arc::new(LeaseTable::connect(table, region).await),
        &args.source.to_string(),
        &objects.location(),
        Some((kinesis.clone(), stream.clone())),
        CoordinatorOptions {
            rescan: args.leases.lease_rescan_interval,
            ..CoordinatorOptions::new(id, args.leases.failover_time)
        },
        args.kinesis.until_idle,
        metrics.leases.clone(),
    )
    .await?;
    let settings = TermSettings {
        objects,
        stream,
        kinesis,
        read,
        batch_size: args.batch_size as usize,
        checkpoint_interval: args.checkpoint.checkpoint_interval,
        reset_state: args.checkpoint.reset_state,
        partition_keyed: !args.leases.allow_spread_keys,
    };
    let mut terms = PipelineTerms::new(&worker, settings, versions, metrics, options, Box::new(outputs));
    Ok(worker.run(&mut terms, stopping).await?)
}

/// Report `message` as an error and exit 1 now, without waiting for the pipeline (which may be
/// inside an operator call) to wind down.
fn exit_now(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1)
}
