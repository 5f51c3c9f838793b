//! The operator instances of the pipeline, one per shard, and the hand-off of state when
//! shards split or merge.
//!
//! When a shard ends, its operator is snapshotted and dropped; the snapshot waits for the
//! children. A child starts with, from each parent's snapshot, the keys whose hash key (the MD5
//! of the partition key, as Kinesis routes records) falls in the child's hash range, plus the
//! parent's instance-wide entry (the empty key), which every child gets. Keys a child takes are
//! removed from the waiting snapshot; instance-wide entries stay for the other children.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use weir_contract::{KeyedState, Output};
use weir_kinesis::HashRange;
use weir_kinesis::reader::hash_key;

use crate::metrics::{Metrics, ShardMetrics};
use crate::operator::{LoadedOperator, RunnerError, ShardOperator};
use crate::source::Lineage;

/// A shard's operator and its series.
pub struct ShardEntry {
    /// The operator instance.
    pub operator: ShardOperator,
    /// The shard's metrics.
    pub metrics: ShardMetrics,
    restarts_seen: u64,
}

impl ShardEntry {
    /// Count restarts of the operator since the last look.
    pub fn count_restarts(&mut self) {
        let restarts = self.operator.stats().restarts;
        if restarts > self.restarts_seen {
            self.metrics.operator_restarts.inc_by(restarts - self.restarts_seen);
            self.restarts_seen = restarts;
        }
    }
}

/// Every shard's operator, and the state of ended shards not yet handed to all children.
pub struct Shards {
    loaded: LoadedOperator,
    snapshot_every: usize,
    live: BTreeMap<String, ShardEntry>,
    ended: HashMap<String, Vec<KeyedState>>,
}

impl Shards {
    /// No shards yet; each will run `loaded`, snapshotting every `snapshot_every` calls.
    pub fn new(loaded: LoadedOperator, snapshot_every: usize) -> Self {
        Self { loaded, snapshot_every, live: BTreeMap::new(), ended: HashMap::new() }
    }

    /// Start `shard`, with its parents' state for its hash range when it has a lineage.
    /// Returns how many keys of state it starts with.
    pub fn start(
        &mut self,
        shard: &str,
        lineage: Option<&Lineage>,
        metrics: &Metrics,
    ) -> Result<usize, RunnerError> {
        let mut state = Vec::new();
        if let Some(lineage) = lineage {
            for parent in &lineage.parents {
                if let Some(parent_state) = self.ended.get_mut(parent) {
                    state.extend(take_range(parent_state, lineage.hash_range));
                }
            }
        }
        let keys = state.iter().filter(|s| !s.is_instance_wide()).count();
        let operator =
            ShardOperator::new(self.loaded.clone(), shard, state)?.with_snapshot_every(self.snapshot_every);
        let entry = ShardEntry { operator, metrics: metrics.shard(shard), restarts_seen: 0 };
        self.live.insert(shard.to_string(), entry);
        Ok(keys)
    }

    /// The operator of `shard`, if it was started and has not ended.
    pub fn get_mut(&mut self, shard: &str) -> Option<&mut ShardEntry> {
        self.live.get_mut(shard)
    }

    /// `shard` was read to its end: keep its state for its children. Returns how many keys
    /// of state wait.
    pub fn end(&mut self, shard: &str) -> Result<usize, RunnerError> {
        let Some(mut entry) = self.live.remove(shard) else { return Ok(0) };
        let state = entry.operator.snapshot()?;
        let keys = state.iter().filter(|s| !s.is_instance_wide()).count();
        self.ended.insert(shard.to_string(), state);
        Ok(keys)
    }

    /// The operator every shard runs.
    pub fn loaded(&self) -> &LoadedOperator {
        &self.loaded
    }

    /// Switch every shard to `next`, carrying each one's state: snapshot the old instance,
    /// restore into a new one. Every new instance is made before any shard switches, so a
    /// version that cannot restore the state is never switched to (the error says why).
    /// Returns the operator replaced and each shard's pause.
    pub fn swap(&mut self, next: LoadedOperator) -> Result<(LoadedOperator, Vec<Duration>), RunnerError> {
        let mut replacements = Vec::with_capacity(self.live.len());
        for (shard, entry) in self.live.iter_mut() {
            let started = Instant::now();
            let state = entry.operator.snapshot()?;
            let operator =
                ShardOperator::new(next.clone(), shard, state)?.with_snapshot_every(self.snapshot_every);
            replacements.push((shard.clone(), operator, started.elapsed()));
        }
        let mut pauses = Vec::with_capacity(replacements.len());
        for (shard, operator, pause) in replacements {
            if let Some(entry) = self.live.get_mut(&shard) {
                entry.operator = operator;
                entry.restarts_seen = 0;
            }
            pauses.push(pause);
        }
        Ok((std::mem::replace(&mut self.loaded, next), pauses))
    }

    /// Shards with an operator now.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether no shard has an operator.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Pass processing time to every shard's operator; outputs with their shards.
    pub fn tick(&mut self, now_ms: i64) -> Result<Vec<(Output, ShardMetrics)>, RunnerError> {
        self.each(|op| op.tick(now_ms))
    }

    /// The input ended: every operator emits what it holds.
    pub fn finish(&mut self, now_ms: i64) -> Result<Vec<(Output, ShardMetrics)>, RunnerError> {
        self.each(|op| op.finish(now_ms))
    }

    fn each(
        &mut self,
        mut call: impl FnMut(&mut ShardOperator) -> Result<Output, RunnerError>,
    ) -> Result<Vec<(Output, ShardMetrics)>, RunnerError> {
        let mut outputs = Vec::new();
        for entry in self.live.values_mut() {
            let output = call(&mut entry.operator)?;
            entry.count_restarts();
            if !output.is_empty() {
                outputs.push((output, entry.metrics.clone()));
            }
        }
        Ok(outputs)
    }
}

/// The entries of `state` a child holding `range` gets: its keys (removed from `state`) and the
/// instance-wide entries (copied).
fn take_range(state: &mut Vec<KeyedState>, range: HashRange) -> Vec<KeyedState> {
    let mut taken = Vec::new();
    state.retain(|entry| {
        if entry.is_instance_wide() {
            taken.push(entry.clone());
            true
        } else if range.contains(hash_key(&entry.key)) {
            taken.push(entry.clone());
            false
        } else {
            true
        }
    });
    taken
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_gives_each_child_its_keys_and_both_the_instance_entry() {
        let keys: Vec<String> = (0..200).map(|i| format!("T{i}")).collect();
        let mut parent: Vec<KeyedState> = std::iter::once(KeyedState::new("", vec![9]))
            .chain(keys.iter().map(|k| KeyedState::new(k.as_str(), vec![1])))
            .collect();
        let middle = u128::MAX / 2;
        let low = take_range(&mut parent, HashRange { start: 0, end: middle });
        let high = take_range(&mut parent, HashRange { start: middle + 1, end: u128::MAX });
        for child in [&low, &high] {
            assert_eq!(child.iter().filter(|s| s.is_instance_wide()).count(), 1);
        }
        assert!(low.iter().filter(|s| !s.is_instance_wide()).all(|s| hash_key(&s.key) <= middle));
        assert!(high.iter().filter(|s| !s.is_instance_wide()).all(|s| hash_key(&s.key) > middle));
        let mut moved: Vec<&str> =
            low.iter().chain(&high).filter(|s| !s.is_instance_wide()).map(|s| s.key.as_str()).collect();
        moved.sort_unstable();
        let mut expected: Vec<&str> = keys.iter().map(String::as_str).collect();
        expected.sort_unstable();
        assert_eq!(moved, expected, "every key goes to exactly one child");
        assert!(low.len() > 50 && high.len() > 50, "MD5 spreads the keys");
        assert_eq!(parent.len(), 1, "only the instance entry stays behind");
    }

    #[test]
    fn a_merge_child_gets_every_key_of_both_parents() {
        let mut a = vec![KeyedState::new("", vec![1]), KeyedState::new("AMZN", vec![2])];
        let mut b = vec![KeyedState::new("", vec![3]), KeyedState::new("GOOG", vec![4])];
        let mut child = take_range(&mut a, HashRange::ALL);
        child.extend(take_range(&mut b, HashRange::ALL));
        let keys: Vec<&str> = child.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["", "AMZN", "", "GOOG"]);
    }
}
