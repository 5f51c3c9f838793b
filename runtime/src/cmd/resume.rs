//! The checkpoint a `weir run --checkpoint` goes on from: the location opened (a directory
//! locked, an S3 prefix claimed), its newest checkpoint read and checked against this run
//! before anything starts: the same source, state grouped by the same key, and an operator
//! that can restore it (or `--reset-state`).

use anyhow::{Context, Result, bail};
use weir::checkpoint::{Checkpoint, CheckpointStore};
use weir::location::Location;
use weir::operator::{LoadedOperator, Runner};

use crate::cli::{CheckpointArgs, RunArgs};

/// The checkpoint store at `location`, checked (its newest checkpoint read), and the checkpoint
/// to go on from, checked against this run: the same source, a state the operator can take.
pub async fn open(
    location: &Location,
    args: &RunArgs,
    loaded: &LoadedOperator,
    region: Option<&str>,
) -> Result<(CheckpointStore, Option<Checkpoint>)> {
    let CheckpointArgs { reset_state, .. } = args.checkpoint;
    if !matches!(args.source, Location::Kinesis(_)) {
        bail!(
            "--checkpoint needs a Kinesis source (kinesis://STREAM): a file, standard input or the generator cannot be resumed where it stopped"
        );
    }
    let mut store = match location {
        Location::File(path) => CheckpointStore::dir(path)?,
        Location::S3 { bucket, key } => CheckpointStore::s3(bucket, key, region).await,
        other => bail!("--checkpoint {other} is not supported: give a directory or s3://BUCKET/PREFIX"),
    };
    let Some(mut checkpoint) = store
        .latest()
        .await
        .with_context(|| format!("cannot read the checkpoints at {}", store.location()))?
    else {
        tracing::info!("no checkpoint at {} yet: starting from --start-position", store.location());
        return Ok((store, None));
    };
    let meta = &checkpoint.meta;
    let source = args.source.to_string();
    if meta.source != source {
        bail!(
            "the checkpoints at {} are of {}, not {source}: give another --checkpoint location for this source",
            store.location(),
            meta.source
        );
    }
    check_state(&mut checkpoint, loaded, reset_state, &store.location())?;
    let meta = &checkpoint.meta;
    tracing::info!(
        "going on from checkpoint {} at {} taken {} ({} shards, {} state entries, operator {}, parallelism {})",
        meta.id,
        store.location(),
        meta.taken_at,
        meta.shards.len(),
        checkpoint.state.len(),
        weir::checkpoint::describe(&meta.operator),
        meta.parallelism
    );
    Ok((store, Some(checkpoint)))
}

/// Check that `loaded` can go on from `checkpoint`'s state (taken at `location`): the same
/// grouping key, and a state its `restore` takes; with `reset_state` the state is dropped
/// instead.
pub fn check_state(
    checkpoint: &mut Checkpoint,
    loaded: &LoadedOperator,
    reset_state: bool,
    location: &str,
) -> Result<()> {
    let meta = &checkpoint.meta;
    let running = weir::checkpoint::operator_ref(loaded);
    let described = weir::checkpoint::describe;
    if reset_state {
        tracing::warn!(
            "--reset-state: the state of checkpoint {} ({} entries, operator {}) is dropped; its shard positions are kept",
            meta.id,
            checkpoint.state.len(),
            described(&meta.operator)
        );
        checkpoint.state = Default::default();
    } else if meta.operator.grouping != running.grouping {
        bail!(
            "checkpoint {} at {} holds state grouped by {}, but operator {} groups by {}: state cannot move to another grouping key; run with --reset-state to go on from the checkpoint's positions without its state",
            meta.id,
            location,
            meta.operator.grouping,
            described(&running),
            running.grouping
        );
    } else if !checkpoint.state.is_empty() {
        // Refused now, not once the pipeline runs: the whole state through one instance.
        if let Err(e) = Runner::new(loaded.clone(), "the restore check", checkpoint.state.clone()) {
            bail!(
                "operator {} cannot restore the state of checkpoint {} at {}, written by operator {}: {e}; run with --reset-state to go on from the checkpoint's positions without its state",
                described(&running),
                meta.id,
                location,
                described(&meta.operator)
            );
        }
    }
    Ok(())
}
