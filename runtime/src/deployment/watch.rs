//! Watching a deployment for new versions: every `interval`, a conditional GET of the manifest
//! (nothing is transferred while its ETag is unchanged). When it names another component or
//! other settings, the new version is downloaded, checked against its digest, compiled (off the
//! runtime's threads) and instantiated with its `init` — all before the pipeline hears of it, so
//! the switch itself only moves state. With trust configured ([`super::trust`]) the new entry's
//! signature and sequence are checked first, on the manifest alone, before anything is
//! downloaded. A version that fails any of this is reported, counted by reason and not offered;
//! the running version goes on, and so does the watch.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::store::{Manifest, OperatorStore, StoreError};
use super::trust::{Refusal, Trust};
use crate::metrics::Metrics;
use crate::operator::{LoadError, LoadedOperator, OperatorEngine};

/// Why a new version could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// Downloading or verifying it failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// It does not load, link or initialise.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The compile task panicked.
    #[error("compiling it stopped: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// What is watched.
pub struct Watch {
    /// The deployment.
    pub store: OperatorStore,
    /// The manifest's ETag when the running version was loaded.
    pub etag: String,
    /// The running version's manifest entry (digest and settings).
    pub running: Manifest,
    /// Settings given on the command line, which override the manifest's.
    pub overrides: Vec<(String, String)>,
    /// Compiles and checks new versions.
    pub engine: OperatorEngine,
    /// How often to look.
    pub interval: Duration,
    /// The keys new versions must be signed by (`--trust`), and the highest sequence number
    /// accepted; None: versions are not verified.
    pub trust: Option<Trust>,
}

impl Watch {
    /// The run goes on from a checkpoint taken while the deployment entry `sequence` ran: with
    /// trust, the entry running now must not be older (an older signed entry put back while
    /// weir was stopped), and none at or below it is accepted after.
    pub fn resumed(&mut self, sequence: u64) -> Result<(), Refusal> {
        match &mut self.trust {
            Some(trust) => trust.resumed(self.running.current.sequence, sequence),
            None => Ok(()),
        }
    }

    /// Look every `interval` until the receiver of `versions` is gone.
    pub async fn run(mut self, versions: mpsc::Sender<LoadedOperator>, metrics: Arc<Metrics>) {
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = versions.closed() => return,
            }
            let (manifest, etag) = match self.store.manifest_if_changed(&self.etag).await {
                Ok(Some(changed)) => changed,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!("cannot read {}, will look again: {e}", self.store.location());
                    continue;
                }
            };
            self.etag = etag;
            let same = manifest.current.digest == self.running.current.digest
                && manifest.current.settings == self.running.current.settings;
            if same {
                continue;
            }
            let digest = manifest.current.digest;
            if let Some(trust) = &mut self.trust
                && let Err(refusal) = trust.accept(&manifest.current)
            {
                metrics.version_refused(refusal.reason());
                tracing::warn!(
                    "new operator version {} at {} refused ({}): {refusal}; {} keeps running",
                    digest.short(),
                    self.store.location(),
                    refusal.reason(),
                    self.running.current.digest.short()
                );
                // Looked at again only when the manifest changes (its ETag is remembered).
                continue;
            }
            match self.prepare(&manifest).await {
                Ok(loaded) => {
                    tracing::info!(
                        "new operator version {} at {}: {} {}, ready to switch",
                        digest.short(),
                        self.store.location(),
                        loaded.name(),
                        loaded.version()
                    );
                    self.running = manifest;
                    if versions.send(loaded).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    metrics.version_refused("unloadable");
                    tracing::warn!(
                        "new operator version {} at {} not switched to: {e}",
                        digest.short(),
                        self.store.location()
                    );
                    // Offered again only when the manifest changes (its ETag is remembered).
                }
            }
        }
    }

    /// Download, verify, compile and initialise the version `manifest` names.
    async fn prepare(&self, manifest: &Manifest) -> Result<LoadedOperator, PrepareError> {
        let artifact = self.store.deployed(&manifest.current).await?;
        let settings = manifest.current.settings_with(&self.overrides);
        let engine = self.engine.clone();
        let loaded = tokio::task::spawn_blocking(move || engine.load(artifact, &settings)).await??;
        Ok(loaded)
    }
}
