//! Watching a deployment for new versions: every `interval`, a conditional GET of the manifest
//! (nothing is transferred while its ETag is unchanged). When it names another component or
//! other settings, the new version is downloaded, checked against its digest, compiled (off the
//! runtime's threads) and instantiated with its `init` — all before the pipeline hears of it, so
//! the switch itself only moves state. With trust configured ([`super::trust`]) the new entry's
//! signature and sequence are checked first, on the manifest alone, before anything is
//! downloaded. A version that fails any of this is reported, counted by reason and not offered;
//! the running version goes on, and so does the watch.
//!
//! A candidate in the manifest ([`super::shadow`]) is checked and prepared the same way (its
//! signature checked, its sequence not remembered: promoting it later is no replay) and handed
//! to the pipeline to shadow the live version, with a [`Tally`] for its evidence; the watch
//! publishes that evidence under the deployment at every look, and once more at the end.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::entry::Deployment;
use super::shadow::Candidate;
use super::store::{Manifest, OperatorStore, StoreError};
use super::tally::{DiffDestination, Tally};
use super::trust::{Refusal, Trust};
use super::versions::Shadowed;
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
    /// Who this weir is in the evidence it publishes about candidates.
    pub worker: String,
    /// Where the differences kept are written.
    pub diffs: DiffDestination,
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

    /// Look every `interval` until the receiver of `versions` is gone; hand candidates to
    /// shadow to `candidates`.
    pub async fn run(
        mut self,
        versions: mpsc::Sender<LoadedOperator>,
        candidates: mpsc::Sender<Option<Shadowed>>,
        metrics: Arc<Metrics>,
    ) {
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        // The tally of the candidate last looked at (each is looked at once).
        let mut shadowing: Option<Arc<Tally>> = None;
        // The current entry last refused: a manifest changed for its candidate alone does not
        // refuse (and count) it again.
        let mut refused: Option<(u64, crate::artifact::Digest)> = None;
        self.shadow(&self.running, &mut shadowing, &candidates, &metrics).await;
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = versions.closed() => {
                    self.publish(shadowing.as_ref()).await;
                    return;
                }
            }
            self.publish(shadowing.as_ref()).await;
            let (manifest, etag) = match self.store.manifest_if_changed(&self.etag).await {
                Ok(Some(changed)) => changed,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!("cannot read {}, will look again: {e}", self.store.location());
                    continue;
                }
            };
            self.etag = etag;
            self.shadow(&manifest, &mut shadowing, &candidates, &metrics).await;
            let same = manifest.current.digest == self.running.current.digest
                && manifest.current.settings == self.running.current.settings;
            if same || refused == Some((manifest.current.sequence, manifest.current.digest)) {
                continue;
            }
            let digest = manifest.current.digest;
            if let Some(trust) = &mut self.trust
                && let Err(refusal) = trust.accept(&manifest.current)
            {
                metrics.version_refused(refusal.reason());
                refused = Some((manifest.current.sequence, manifest.current.digest));
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
            match self.prepare(&manifest.current).await {
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
                    refused = Some((manifest.current.sequence, manifest.current.digest));
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

    /// Start shadowing the candidate `manifest` names, or stop shadowing when it names none
    /// (or another); each candidate is looked at once.
    async fn shadow(
        &self,
        manifest: &Manifest,
        shadowing: &mut Option<Arc<Tally>>,
        candidates: &mpsc::Sender<Option<Shadowed>>,
        metrics: &Metrics,
    ) {
        let wanted = manifest.candidate.as_ref();
        if wanted.map(|c| c.deployment.sequence) == shadowing.as_ref().map(|t| t.sequence()) {
            return;
        }
        if let Some(before) = shadowing.take() {
            self.publish(Some(&before)).await;
            let _ = candidates.send(None).await;
        }
        let Some(candidate) = wanted else { return };
        let tally = Arc::new(Tally::new(
            candidate.deployment.sequence,
            &self.worker,
            metrics.shadow.clone(),
            self.diffs.clone(),
        ));
        *shadowing = Some(tally.clone());
        match self.prepare_candidate(candidate).await {
            Ok(loaded) => {
                tracing::info!(
                    "candidate {} {} ({}) at {}: shadowing the live version, outputs compared and not written",
                    loaded.name(),
                    loaded.version(),
                    candidate.deployment.digest.short(),
                    self.store.location()
                );
                let shadowed = Shadowed { loaded, candidate: Box::new(candidate.clone()), tally };
                let _ = candidates.send(Some(shadowed)).await;
            }
            Err(why) => {
                tally
                    .stopped(format!("candidate {} not started: {why}", candidate.deployment.digest.short()));
                self.publish(shadowing.as_ref()).await;
            }
        }
    }

    /// Check, download, compile and initialise `candidate`. (One that groups records by
    /// another key than the live version is refused by the pipeline, which knows the live
    /// one's.)
    async fn prepare_candidate(&self, candidate: &Candidate) -> Result<LoadedOperator, String> {
        if let Some(trust) = &self.trust
            && let Err(refusal) = trust.check(&candidate.deployment)
        {
            return Err(format!("refused ({}): {refusal}", refusal.reason()));
        }
        self.prepare(&candidate.deployment).await.map_err(|e| e.to_string())
    }

    /// Publish the evidence about the candidate, if it changed.
    async fn publish(&self, tally: Option<&Arc<Tally>>) {
        let Some(tally) = tally else { return };
        let Some(evidence) = tally.changed() else { return };
        if let Err(e) = self.store.put_evidence(&evidence).await {
            tally.unpublished();
            tracing::warn!(
                "cannot publish the shadow evidence to {}, will try again: {e}",
                self.store.location()
            );
        }
    }

    /// Download, verify, compile and initialise the version `deployment` names.
    async fn prepare(&self, deployment: &Deployment) -> Result<LoadedOperator, PrepareError> {
        let artifact = self.store.deployed(deployment).await?;
        let settings = deployment.settings_with(&self.overrides);
        let engine = self.engine.clone();
        let loaded = tokio::task::spawn_blocking(move || engine.load(artifact, &settings)).await??;
        Ok(loaded)
    }
}
