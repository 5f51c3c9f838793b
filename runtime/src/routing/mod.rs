//! Routing by grouping key: a record's key (its partition key, or a field of its JSON object:
//! [`field`]), the key group the key hashes into, and which instance owns which key groups.
//! Sources route each record as they read it ([`crate::source::routed`]); checkpoints and
//! leases move state by the same key groups.
//!
//! Keys hash (XXH3, a fixed and specified function, so the same in every build and release)
//! into [`KEY_GROUPS`] groups, as Flink's "max parallelism"; instance `i` of `p` owns the
//! contiguous groups `g` with `g * p / KEY_GROUPS == i`. State is moved per key group, so a
//! different parallelism, a swap, a checkpoint and a lease all move it the same way.

use std::borrow::Cow;
use std::ops::Range;

use weir_contract::Grouping;

pub mod field;

use field::FieldReader;

/// The number of key groups: the most instances a job can ever run on.
pub const KEY_GROUPS: u32 = 4096;

/// The key group of a grouping key.
#[inline]
pub fn key_group(key: &[u8]) -> u32 {
    (xxhash_rust::xxh3::xxh3_64(key) % u64::from(KEY_GROUPS)) as u32
}

/// The instance, of `parallelism`, that owns key group `group`.
#[inline]
pub fn owner(group: u32, parallelism: usize) -> usize {
    (group as usize * parallelism) / KEY_GROUPS as usize
}

/// The key groups instance `instance` of `parallelism` owns.
pub fn groups_of(instance: usize, parallelism: usize) -> Range<u32> {
    let start = |i: usize| (i * KEY_GROUPS as usize).div_ceil(parallelism) as u32;
    start(instance)..start(instance + 1)
}

/// Finds the instance that owns each record's grouping key.
#[derive(Clone, Debug)]
pub struct Router {
    /// The field, with the layout of the last record read, when records are grouped by a
    /// JSON field.
    field: Option<FieldReader>,
    parallelism: usize,
}

impl Router {
    /// Route by `grouping` to `parallelism` instances (at least 1).
    pub fn new(grouping: Grouping, parallelism: usize) -> Self {
        let field = match &grouping {
            Grouping::JsonField(name) => Some(FieldReader::new(name.as_bytes())),
            Grouping::PartitionKey => None,
        };
        Self { field, parallelism: parallelism.max(1) }
    }

    /// How many instances it routes to.
    pub fn parallelism(&self) -> usize {
        self.parallelism
    }

    /// The instance that owns the record with `partition_key` and `data` (with one instance,
    /// found without reading the record).
    #[inline]
    pub fn owner_of(&mut self, partition_key: &[u8], data: &[u8]) -> usize {
        if self.parallelism == 1 {
            return 0;
        }
        let key = match &mut self.field {
            None => Cow::Borrowed(partition_key),
            Some(field) => field.value(data).unwrap_or(Cow::Borrowed(b"")),
        };
        owner(key_group(&key), self.parallelism)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_groups_are_spread_evenly_and_owned_by_exactly_one_instance() {
        for parallelism in [1, 2, 3, 7, 64, 4096] {
            let mut next = 0;
            for instance in 0..parallelism {
                let groups = groups_of(instance, parallelism);
                assert_eq!(groups.start, next, "contiguous");
                assert!(groups.clone().all(|g| owner(g, parallelism) == instance));
                assert!(groups.len().abs_diff(KEY_GROUPS as usize / parallelism) <= 1);
                next = groups.end;
            }
            assert_eq!(next, KEY_GROUPS);
        }
        let mut per_instance = [0usize; 3];
        for i in 0..3000 {
            per_instance[owner(key_group(format!("TICKER{i}").as_bytes()), 3)] += 1;
        }
        assert!(per_instance.iter().all(|&n| (800..1200).contains(&n)), "{per_instance:?}");
        // Fixed function: these never change (state is stored per key group).
        assert_eq!(key_group(b"AMZN"), key_group(b"AMZN"));
        assert_eq!(key_group(b""), (xxhash_rust::xxh3::xxh3_64(b"") % 4096) as u32);
    }
}
