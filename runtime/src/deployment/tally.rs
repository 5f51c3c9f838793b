//! The evidence this weir gathers about a candidate ([`Tally`]): what the pipeline's shadow
//! instances found, counted into the shadow metrics as it comes, each kept difference written to
//! the diff destination (`--shadow-diff FILE`, or the log), and published under the deployment
//! by the watch ([`super::watch`]). One tally per candidate for the whole process, so a lease
//! group worker's terms add to the same evidence.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::shadow::{Evidence, Sample};
use crate::metrics::ShadowMetrics;

/// Where the kept differences go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum DiffDestination {
    /// One warning per difference kept.
    #[default]
    Log,
    /// One JSON line per difference kept, appended.
    File(PathBuf),
}

/// One candidate's evidence in this process.
#[derive(Debug)]
pub struct Tally {
    /// The candidate's sequence number.
    sequence: u64,
    evidence: Mutex<Evidence>,
    metrics: ShadowMetrics,
    diffs: DiffDestination,
    /// Whether it changed since it was last published.
    changed: AtomicBool,
}

impl Tally {
    /// A tally of the candidate `sequence` found by `worker`, counting into `metrics`.
    pub fn new(sequence: u64, worker: &str, metrics: ShadowMetrics, diffs: DiffDestination) -> Self {
        let evidence = Evidence { sequence, worker: worker.to_string(), ..Evidence::default() };
        Self { sequence, evidence: Mutex::new(evidence), metrics, diffs, changed: AtomicBool::new(true) }
    }

    /// The candidate's sequence number.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// The candidate (re)started on this weir: the comparison starts over from the live state.
    pub fn started(&self) {
        self.update(|e| {
            e.started_at = Some(jiff::Timestamp::now());
            e.stopped = None;
        });
    }

    /// Add what a comparison found (`found`: its records, equal outputs, differences by kind
    /// and key, and the first samples of each kind); count it in the metrics and write the
    /// samples kept.
    pub fn add(&self, found: Evidence) {
        self.metrics.records_compared.inc_by(found.records_compared);
        self.metrics.outputs_equal.inc_by(found.outputs_equal);
        for (kind, n) in &found.differences {
            self.metrics.differ(kind.label(), *n);
        }
        let mut kept = Vec::new();
        self.update(|e| kept = e.add(found));
        for sample in kept {
            self.write(&sample);
        }
    }

    /// A candidate instance stopped for `reason`.
    pub fn stopped(&self, reason: String) {
        tracing::warn!("the candidate stopped: {reason}; the live version goes on");
        self.metrics.stopped.inc();
        self.update(|e| {
            e.stopped.get_or_insert(reason);
        });
    }

    /// The shadow series it counts into.
    pub fn metrics(&self) -> &ShadowMetrics {
        &self.metrics
    }

    /// The evidence now, if it changed since the last call (to publish it).
    pub fn changed(&self) -> Option<Evidence> {
        if !self.changed.swap(false, Ordering::AcqRel) {
            return None;
        }
        let mut evidence = self.snapshot();
        evidence.updated_at = Some(jiff::Timestamp::now());
        Some(evidence)
    }

    /// Publishing what [`Tally::changed`] gave failed: give it again next time.
    pub fn unpublished(&self) {
        self.changed.store(true, Ordering::Release);
    }

    /// The evidence now.
    pub fn snapshot(&self) -> Evidence {
        self.evidence.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn update(&self, change: impl FnOnce(&mut Evidence)) {
        change(&mut self.evidence.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        self.changed.store(true, Ordering::Release);
    }

    fn write(&self, sample: &Sample) {
        match &self.diffs {
            DiffDestination::Log => tracing::warn!(
                kind = sample.kind.label(),
                key = %sample.key,
                "the candidate differs: {sample}"
            ),
            DiffDestination::File(path) => {
                let line = serde_json::to_string(sample).unwrap_or_default();
                let written = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .and_then(|mut f| writeln!(f, "{line}"));
                if let Err(e) = written {
                    tracing::warn!("cannot write a shadow difference to {}: {e}", path.display());
                }
            }
        }
    }
}
