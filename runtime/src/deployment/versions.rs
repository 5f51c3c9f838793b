//! Which operator version runs, and when a new one is rolled back: the decisions of a live
//! swap, kept apart from the pipeline that carries them out ([`crate::pipeline`] snapshots,
//! instantiates and restores).
//!
//! New versions arrive already downloaded, verified, compiled and initialised (see
//! [`super::watch`]). After a switch the new version is on probation for the policy's
//! `window`: a batch it fails on is handed back untouched, and more than `max_traps` such
//! failures within the window mean: switch back to the previous version, with the state, and
//! let it process the failed batch, so that nothing is lost or processed twice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::shadow::Candidate;
use super::tally::Tally;
use crate::operator::LoadedOperator;

/// When a new version is rolled back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RollbackPolicy {
    /// Roll back after more than this many failed batches ...
    pub max_traps: u32,
    /// ... within this long after the switch.
    pub window: Duration,
}

impl Default for RollbackPolicy {
    fn default() -> Self {
        Self { max_traps: 2, window: Duration::from_secs(60) }
    }
}

struct Probation {
    previous: LoadedOperator,
    since: Instant,
    traps: u32,
}

/// What to do after the version on probation failed a batch.
pub enum Verdict {
    /// Keep it: the batch goes through the usual recovery.
    Keep {
        /// Failed batches since the switch.
        traps: u32,
        /// Time since the switch.
        within: Duration,
    },
    /// Switch back to `to`.
    RollBack {
        /// The version before.
        to: Box<LoadedOperator>,
        /// Failed batches since the switch.
        traps: u32,
        /// Time since the switch.
        within: Duration,
    },
}

/// A candidate to run beside the live version, prepared like a new version, with the tally
/// its evidence goes to.
#[derive(Clone)]
pub struct Shadowed {
    /// The candidate, compiled and initialised.
    pub loaded: LoadedOperator,
    /// Its manifest entry.
    pub candidate: Box<Candidate>,
    /// This weir's evidence about it.
    pub tally: Arc<Tally>,
}

/// What changed in the deployment.
pub enum Change {
    /// A new version to switch to.
    Version(LoadedOperator),
    /// A candidate to shadow the live version (None: none any more).
    Candidate(Option<Shadowed>),
}

/// The operator the pipeline starts with, where new versions come from, and the probation of
/// the latest switch; the candidate shadowing it, if any, and where candidates come from.
pub struct Versions {
    initial: LoadedOperator,
    updates: Option<mpsc::Receiver<LoadedOperator>>,
    policy: RollbackPolicy,
    probation: Option<Probation>,
    candidates: Option<mpsc::Receiver<Option<Shadowed>>>,
    candidate: Option<Shadowed>,
}

impl From<LoadedOperator> for Versions {
    fn from(initial: LoadedOperator) -> Self {
        Self {
            initial,
            updates: None,
            policy: RollbackPolicy::default(),
            probation: None,
            candidates: None,
            candidate: None,
        }
    }
}

impl Versions {
    /// Start with `initial`, switch to each version `updates` delivers.
    pub fn watched(
        initial: LoadedOperator,
        updates: mpsc::Receiver<LoadedOperator>,
        policy: RollbackPolicy,
    ) -> Self {
        Self { updates: Some(updates), policy, ..Self::from(initial) }
    }

    /// Shadow each candidate `candidates` delivers (None: the candidate was taken away).
    pub fn with_candidates(mut self, candidates: mpsc::Receiver<Option<Shadowed>>) -> Self {
        self.candidates = Some(candidates);
        self
    }

    /// The candidate to shadow now (a lease group's next term starts it again).
    pub fn candidate(&self) -> Option<&Shadowed> {
        self.candidate.as_ref()
    }

    /// The first operator.
    pub fn initial(&self) -> LoadedOperator {
        self.initial.clone()
    }

    /// The next version to switch to, or the next change of candidate; never resolves when
    /// there are none to come.
    pub async fn next_change(&mut self) -> Change {
        loop {
            let updates = async {
                match &mut self.updates {
                    Some(updates) => updates.recv().await,
                    None => std::future::pending().await,
                }
            };
            let candidates = async {
                match &mut self.candidates {
                    Some(candidates) => candidates.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                next = updates => match next {
                    Some(next) => return Change::Version(next),
                    None => self.updates = None,
                },
                next = candidates => match next {
                    Some(next) => {
                        self.candidate.clone_from(&next);
                        return Change::Candidate(next);
                    }
                    None => self.candidates = None,
                },
            }
        }
    }

    /// The pipeline switched away from `previous`: the new version is on probation, and no
    /// candidate is shadowed (it was promoted, or was about the version replaced).
    pub fn switched(&mut self, previous: LoadedOperator) {
        self.candidate = None;
        self.probation = Some(Probation { previous, since: Instant::now(), traps: 0 });
    }

    /// Whether the running version is on probation (its failed batches are handed back).
    pub fn on_probation(&mut self) -> bool {
        if self.probation.as_ref().is_some_and(|p| p.since.elapsed() >= self.policy.window) {
            self.probation = None;
        }
        self.probation.is_some()
    }

    /// The version on probation failed a batch.
    pub fn failed(&mut self) -> Option<Verdict> {
        let probation = self.probation.as_mut()?;
        probation.traps += 1;
        let (traps, within) = (probation.traps, probation.since.elapsed());
        if traps <= self.policy.max_traps {
            return Some(Verdict::Keep { traps, within });
        }
        let probation = self.probation.take()?;
        Some(Verdict::RollBack { to: Box::new(probation.previous), traps, within })
    }
}
