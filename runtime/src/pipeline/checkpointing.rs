//! Checkpoints from the pipeline's side. The pipeline cuts: it snapshots every instance (after
//! every sub-batch handed to it), notes where every shard stands ([`super::progress`]), and sends an
//! acknowledgement request down the sink's channel behind the outputs produced so far. The
//! writer task waits for that acknowledgement (every output before the cut written), then
//! writes the checkpoint to its store, retrying with backoff (`weir_aws::Policy::WRITE`, each
//! failure counted in `weir_checkpoint_failures_total`). While one is being written at most one
//! more waits; an interval that comes while one is still waiting is skipped (counted).
//! Only a failure that trying again may cure (`weir_aws::Transient`: a throttled or
//! unreachable S3 or lease table) is retried; any other (another process writing to the store,
//! a refusal, a local I/O error) stops the writer, and weir with it, with the reason.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use weir_aws::{Policy, Service, Transient};

use crate::checkpoint::{Checkpoint, CheckpointError, CheckpointStore};
use crate::metrics::Metrics;

/// A checkpoint cut, waiting for the sink.
struct Cut {
    checkpoint: Checkpoint,
    /// Answered when every output (and dead letter) produced before the cut is written.
    written: Vec<oneshot::Receiver<()>>,
    at: Instant,
}

/// The way to the writer task.
pub struct Writer {
    cuts: mpsc::Sender<Cut>,
}

/// The writer task: it ends when the [`Writer`] is dropped and every cut handed over is
/// written, or with the error that stopped it.
pub type WriterTask = JoinHandle<Result<(), CheckpointError>>;

impl Writer {
    /// Start the writer task over `store`.
    pub fn start(store: Box<dyn CheckpointStore>, metrics: Arc<Metrics>) -> (Self, WriterTask) {
        let (tx, rx) = mpsc::channel(1);
        (Self { cuts: tx }, tokio::spawn(write_all(store, rx, metrics)))
    }

    /// Whether the previous cut has been taken up (a new one would not wait).
    pub fn ready(&self) -> bool {
        self.cuts.capacity() > 0
    }

    /// Hand over `checkpoint`, to be written once every one of `written` is answered; waits
    /// while the previous cut is still queued.
    pub async fn submit(&self, checkpoint: Checkpoint, written: Vec<oneshot::Receiver<()>>) {
        let _ = self.cuts.send(Cut { checkpoint, written, at: Instant::now() }).await;
    }
}

/// What the writer task ended with, a panic included.
pub fn outcome(
    result: Result<Result<(), CheckpointError>, tokio::task::JoinError>,
) -> Result<(), CheckpointError> {
    result.unwrap_or_else(|e| Err(CheckpointError::Panicked(e.to_string())))
}

async fn write_all(
    mut store: Box<dyn CheckpointStore>,
    mut cuts: mpsc::Receiver<Cut>,
    metrics: Arc<Metrics>,
) -> Result<(), CheckpointError> {
    while let Some(cut) = cuts.recv().await {
        let mut complete = true;
        for written in cut.written {
            complete &= written.await.is_ok();
        }
        if !complete {
            // The sink or the dead-letter destination stopped before writing everything: its
            // error ends the run, and this checkpoint must not claim what it did not write.
            continue;
        }
        let checkpoint = &cut.checkpoint;
        let failures = &metrics.checkpoints.failures;
        let what = format!("write checkpoint {} to {}", checkpoint.meta.id, store.location());
        let (_, written) =
            weir_aws::retry_with(Service::S3, Policy::WRITE, what, &mut store, |store| async move {
                let written = store.write(checkpoint).await;
                if written.as_ref().is_err_and(Transient::is_transient) {
                    failures.inc();
                }
                (store, written)
            })
            .await;
        let pointer = written?;
        metrics.checkpoints.completed_now(pointer.id, pointer.bytes, cut.at.elapsed());
        tracing::debug!(
            "checkpoint {} written to {} ({} bytes, {:.1} ms after the cut)",
            pointer.id,
            store.location(),
            pointer.bytes,
            cut.at.elapsed().as_secs_f64() * 1e3
        );
    }
    Ok(())
}
