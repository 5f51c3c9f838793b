//! The checkpoint a `weir run --checkpoint` goes on from: the location opened (a directory
//! locked, an S3 prefix claimed), its newest checkpoint read and checked against this run
//! before anything starts: the same source, state grouped by the same key, and an operator
//! that can restore it (or `--reset-state`).

use anyhow::{Context, Result, bail};
use weir::checkpoint::{Checkpoint, CheckpointStore, PointerStore, check_state};
use weir::location::Location;
use weir::operator::LoadedOperator;

use crate::cli::{CheckpointArgs, RunArgs};

/// The checkpoint store at `location`, checked (its newest checkpoint read), and the checkpoint
/// to go on from, checked against this run: the same source, a state the operator can take.
pub async fn open(
    location: &Location,
    args: &RunArgs,
    loaded: &LoadedOperator,
    region: Option<&str>,
) -> Result<(PointerStore, Option<Checkpoint>)> {
    let CheckpointArgs { reset_state, .. } = args.checkpoint;
    if !matches!(args.source, Location::Kinesis(_)) {
        bail!(
            "--checkpoint needs a Kinesis source (kinesis://STREAM): a file, standard input or the generator cannot be resumed where it stopped"
        );
    }
    let mut store = match location {
        Location::File(path) => PointerStore::dir(path)?,
        Location::S3 { bucket, key } => PointerStore::s3(bucket, key, region).await,
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
