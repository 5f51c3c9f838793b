//! Finding grouping keys whose records arrive on more than one shard. Inside one process that
//! is harmless (records are routed by grouping key), but processes that share a stream shard
//! by shard would each hold part of such a key's state: the results would be wrong. So weir
//! says so, naming the key and the shards, and counts such keys
//! (`weir_keys_on_several_shards_total`); `builtin:rekey` in front is the fix.
//!
//! Checked on a sample (one record in [`SAMPLE_EVERY`] of each batch, at a rotating offset):
//! a key spread over shards shows up within a few batches, and the check costs about 2% of the
//! whole path's CPU (`perf` of `weir run` over a file), so a source of one shard (a file, the
//! generator) is not checked at all. A key that moves to a child shard after a split or merge
//! is not spread.

use std::collections::{HashMap, HashSet};

use weir_contract::OwnedBatch;

use super::progress::Progress;
use crate::routing::field::Field;

/// One record in this many is checked.
pub const SAMPLE_EVERY: usize = 64;
/// Keys remembered at most (beyond, new keys are not checked).
pub const MAX_KEYS: usize = 100_000;
/// Keys named in the log at most; the metric counts them all.
const MAX_WARNINGS: usize = 10;

/// A sampled record whose partition key is not its grouping key, in a lease group.
#[derive(Debug, thiserror::Error)]
#[error(
    "a record on shard {shard} has partition key {partition_key:?} but grouping key {key:?}: workers sharing a stream (--lease-table) each read whole shards, so every record of a key must have the key as its partition key, or the key's state is split between workers and its results are wrong. Put `weir run --operator builtin:rekey --set key-field=<the grouping field> --source <this stream> --sink kinesis://KEYED` in front and give the workers kinesis://KEYED, or pass --allow-spread-keys if the stream keeps each key on one shard another way"
)]
pub struct Unkeyed {
    /// The shard.
    pub shard: String,
    /// The record's partition key.
    pub partition_key: String,
    /// Its grouping key.
    pub key: String,
}

/// The shard each sampled key was last seen on.
#[derive(Debug)]
pub struct Spread {
    field: Field,
    /// Refuse a record whose partition key is not its grouping key (a lease group's worker
    /// sees only its own shards, so it cannot see a key spread over two workers otherwise).
    partition_keyed: bool,
    seen: HashMap<Box<[u8]>, String>,
    /// Keys found on several shards, each counted once.
    spread: HashSet<Box<[u8]>>,
    offset: usize,
}

impl Spread {
    /// Watch the grouping key `field` (a JSON field of each record); with `partition_keyed`,
    /// refuse records whose partition key is not their grouping key.
    pub fn new(field: Field, partition_keyed: bool) -> Self {
        Self { field, partition_keyed, seen: HashMap::new(), spread: HashSet::new(), offset: 0 }
    }

    /// Sample `batch`'s records; returns how many keys were newly found on several shards.
    pub fn observe(&mut self, batch: &OwnedBatch, progress: &Progress) -> Result<u64, Unkeyed> {
        self.offset = (self.offset + 1) % SAMPLE_EVERY;
        let mut found = 0;
        // Walk the lengths and slice only the sampled records (`packed().step_by()` built
        // every record's slices: 2% of the whole path's CPU).
        let mut at = 0usize;
        for (i, (&key_len, &data_len)) in batch.key_lens.iter().zip(&batch.data_lens).enumerate() {
            let start = at;
            at += key_len as usize + data_len as usize;
            if i % SAMPLE_EVERY != self.offset {
                continue;
            }
            let Some(record) = batch.bytes.get(start..at) else { break };
            let (partition_key, data) = record.split_at(key_len as usize);
            let Some(key) = self.field.value(data) else { continue };
            if self.partition_keyed && key.as_ref() != partition_key {
                return Err(Unkeyed {
                    shard: batch.shard_id.clone(),
                    partition_key: String::from_utf8_lossy(partition_key).into_owned(),
                    key: String::from_utf8_lossy(&key).into_owned(),
                });
            }
            let room = self.seen.len() < MAX_KEYS;
            match self.seen.get_mut(key.as_ref()) {
                Some(shard) if *shard == batch.shard_id => {}
                Some(shard) if progress.descends_from(&batch.shard_id, shard) => {
                    shard.clone_from(&batch.shard_id);
                }
                Some(shard) => {
                    if !self.spread.insert(key.as_ref().into()) {
                        continue;
                    }
                    found += 1;
                    if self.spread.len() <= MAX_WARNINGS {
                        tracing::warn!(
                            "records of grouping key {:?} arrive on shards {shard} and {}: one weir process routes them right, but several sharing this stream would split its state; write the stream keyed by it, or put `weir run --operator builtin:rekey --set key-field=...` in front",
                            String::from_utf8_lossy(&key),
                            batch.shard_id
                        );
                    }
                }
                None if room => {
                    self.seen.insert(key.as_ref().into(), batch.shard_id.clone());
                }
                None => {}
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(shard: &str, tickers: &[&str]) -> OwnedBatch {
        let mut b = OwnedBatch::new(shard);
        for _ in 0..SAMPLE_EVERY {
            for t in tickers {
                b.push("k", format!(r#"{{"TICKER": "{t}"}}"#).as_bytes(), 0);
            }
        }
        b
    }

    #[test]
    fn a_key_on_two_shards_is_found_once_and_a_key_that_moved_to_a_child_is_not() {
        let mut progress = Progress::default();
        progress.started("a", &[], 0);
        progress.started("b", &[], 0);
        progress.started("c", &["a".to_string()], 0);
        let mut spread = Spread::new(Field::new(b"TICKER"), false);
        let mut observe = |b| spread.observe(&b, &progress).unwrap();
        assert_eq!(observe(batch("a", &["X", "Y"])), 0);
        assert_eq!(observe(batch("a", &["X", "Y"])), 0, "the same shard again");
        assert_eq!(observe(batch("c", &["Y"])), 0, "Y moved to a's child");
        assert_eq!(observe(batch("b", &["X"])), 1, "X is on a and b");
        assert_eq!(observe(batch("b", &["X"])), 0, "counted once");
    }

    #[test]
    fn in_a_lease_group_a_record_not_keyed_by_its_grouping_key_is_refused_with_both_keys() {
        let progress = Progress::default();
        let mut spread = Spread::new(Field::new(b"TICKER"), true);
        let mut keyed = OwnedBatch::new("a");
        for _ in 0..SAMPLE_EVERY * 2 {
            keyed.push("AMZN", br#"{"TICKER": "AMZN"}"#, 0);
        }
        assert_eq!(spread.observe(&keyed, &progress).unwrap(), 0);
        let error = spread.observe(&batch("a", &["AMZN"]), &progress).unwrap_err();
        assert_eq!((error.partition_key.as_str(), error.key.as_str()), ("k", "AMZN"));
        assert!(error.to_string().contains("builtin:rekey"), "{error}");
    }
}
