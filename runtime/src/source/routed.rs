//! One shard's records routed where they are read: each record goes straight into the sub-batch
//! of the operator instance that owns its grouping key ([`Router`]), so the pipeline hands the
//! sub-batches to the instances as they are, and every record is copied once, into the
//! sub-batch it is processed from.
//!
//! Routed in the source rather than in the pipeline's step, 5,000,000 trades from a file at
//! `--parallelism 2` took 2.05 s of CPU instead of 2.69 (BENCHMARKS.md, "A second core"): the
//! step no longer finds every record's owner and gathers its sub-batches (a second copy of
//! every record), and what routing is left runs in the source's task, beside the instances.

use weir_contract::OwnedBatch;

use crate::routing::Router;

/// One shard's records, in one sub-batch per instance (some may be empty), each in the order
/// the shard had them. A `Routed` of one part that has not been routed (made with
/// [`Routed::whole`]) is routed by [`Routed::route`] when there are several instances.
#[derive(Clone, Debug, PartialEq)]
pub struct Routed {
    parts: Vec<OwnedBatch>,
}

impl Routed {
    /// Every record of `batch`, not yet routed.
    pub fn whole(batch: OwnedBatch) -> Self {
        Self { parts: vec![batch] }
    }

    /// The sub-batches, one per instance (or one, not routed).
    pub fn parts(&self) -> &[OwnedBatch] {
        &self.parts
    }

    /// The sub-batches, mutably (their processing and watermark times are set by the pipeline).
    pub fn parts_mut(&mut self) -> &mut [OwnedBatch] {
        &mut self.parts
    }

    /// The sub-batches, given up.
    pub fn into_parts(self) -> Vec<OwnedBatch> {
        self.parts
    }

    /// The shard the records come from.
    pub fn shard_id(&self) -> &str {
        self.parts.first().map_or("", |p| &p.shard_id)
    }

    /// Records in all sub-batches.
    pub fn len(&self) -> usize {
        self.parts.iter().map(OwnedBatch::len).sum()
    }

    /// Whether there is no record.
    pub fn is_empty(&self) -> bool {
        self.parts.iter().all(OwnedBatch::is_empty)
    }

    /// Give these records one sub-batch per instance `router` routes to: nothing to do if they
    /// have (or there is one instance), otherwise each record is copied to its owner's.
    pub fn route(&mut self, router: &Router) {
        if self.parts.len() == router.parallelism() {
            return;
        }
        let mut batcher = Batcher::new(router, self.shard_id().to_string());
        for part in &self.parts {
            for ((key_len, record, arrival), position) in part.packed().zip(part.positions()) {
                batcher.push_packed(key_len, record, arrival, position);
            }
        }
        let mut routed = batcher.done().parts;
        if let Some(first) = self.parts.first() {
            for part in &mut routed {
                part.now_ms = first.now_ms;
                part.watermark_ms = first.watermark_ms;
            }
        }
        self.parts = routed;
    }
}

impl From<OwnedBatch> for Routed {
    fn from(batch: OwnedBatch) -> Self {
        Self::whole(batch)
    }
}

/// Builds one shard's [`Routed`] batches record by record.
#[derive(Debug)]
pub struct Batcher {
    router: Router,
    parts: Vec<OwnedBatch>,
}

impl Batcher {
    /// Batches of shard `shard`, routed by `router`.
    pub fn new(router: &Router, shard: impl Into<String>) -> Self {
        let shard = shard.into();
        let parts = (0..router.parallelism()).map(|_| OwnedBatch::new(shard.clone())).collect();
        Self { router: router.clone(), parts }
    }

    /// The next records pushed are shard `shard`'s (a source reading several shards keeps one
    /// `Batcher`, and with it the router's learned layout). Only between batches.
    pub fn start(&mut self, shard: &str) {
        debug_assert!(self.is_empty(), "a batch holds one shard's records");
        for part in &mut self.parts {
            part.shard_id.clear();
            part.shard_id.push_str(shard);
        }
    }

    /// Records pushed since the last [`take`](Self::take).
    pub fn len(&self) -> usize {
        self.parts.iter().map(OwnedBatch::len).sum()
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.parts.iter().all(OwnedBatch::is_empty)
    }

    /// Reserve room for `records` more records of `bytes` more bytes, shared out over the
    /// sub-batches as evenly as keys usually are.
    pub fn reserve(&mut self, records: usize, bytes: usize) {
        let n = self.parts.len();
        for part in &mut self.parts {
            part.reserve(records.div_ceil(n), bytes.div_ceil(n));
        }
    }

    /// Append a record to its owner's sub-batch, with its position in the shard if the source
    /// gives positions. Returns how many records that sub-batch holds now: a source closes its
    /// batch ([`take`](Self::take)) once one holds `--batch-size`, so every operator call gets at
    /// most that many, and with several instances each call still gets about that many.
    #[inline]
    pub fn push(
        &mut self,
        partition_key: &str,
        data: &[u8],
        arrival_time_ms: i64,
        position: Option<&[u8]>,
    ) -> usize {
        let part = self.part_of(partition_key.as_bytes(), data);
        part.push(partition_key, data, arrival_time_ms);
        if let Some(position) = position {
            part.push_position(position);
        }
        part.len()
    }

    /// How many sub-batches it builds (one per instance).
    pub fn parallelism(&self) -> usize {
        self.parts.len()
    }

    /// [`push`](Self::push) of a record given as it lies in a batch's bytes: its key
    /// (`key_len` bytes, not checked to be UTF-8 again) followed by its data.
    #[inline]
    fn push_packed(
        &mut self,
        key_len: u32,
        key_and_data: &[u8],
        arrival_time_ms: i64,
        position: Option<&[u8]>,
    ) {
        let (key, data) = key_and_data.split_at((key_len as usize).min(key_and_data.len()));
        let part = self.part_of(key, data);
        part.push_packed(key_len, key_and_data, arrival_time_ms);
        if let Some(position) = position {
            part.push_position(position);
        }
    }

    /// The sub-batch of the instance that owns the record with `key` and `data`.
    #[inline(always)]
    fn part_of(&mut self, key: &[u8], data: &[u8]) -> &mut OwnedBatch {
        let owner = self.router.owner_of(key, data);
        &mut self.parts[owner]
    }

    /// The records pushed so far; the next ones go into sub-batches with room for as many as
    /// each of these held.
    pub fn take(&mut self) -> Routed {
        let parts = self
            .parts
            .iter_mut()
            .map(|part| {
                let mut next = OwnedBatch::new(part.shard_id.clone());
                next.reserve(part.len(), part.bytes.len());
                if !part.positions.is_empty() {
                    next.positions.reserve(part.positions.len());
                    next.position_lens.reserve(part.len());
                }
                std::mem::replace(part, next)
            })
            .collect();
        Routed { parts }
    }

    /// The records pushed, when no more follow.
    pub fn done(self) -> Routed {
        Routed { parts: self.parts }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::{key_group, owner};
    use weir_contract::Grouping;

    fn trade(ticker: &str, i: usize) -> Vec<u8> {
        format!(
            r#"{{"EVENT_TIME": "2026-11-25T10:00:{:02}.000", "TICKER": "{ticker}", "PRICE": {i}}}"#,
            i % 60
        )
        .into_bytes()
    }

    /// A record as (partition key, data, arrival, position).
    type Seen = (String, Vec<u8>, i64, Option<Vec<u8>>);

    /// Each part's records.
    fn contents(routed: &Routed) -> Vec<Vec<Seen>> {
        routed
            .parts()
            .iter()
            .map(|p| {
                p.view()
                    .records()
                    .zip(p.positions())
                    .map(|(r, pos)| {
                        (
                            r.partition_key.to_string(),
                            r.data.to_vec(),
                            r.arrival_time_ms,
                            pos.map(<[u8]>::to_vec),
                        )
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn every_record_lands_in_its_owners_part_in_shard_order() {
        let router = Router::new(Grouping::JsonField("TICKER".into()), 3);
        let mut batcher = Batcher::new(&router, "shard-7");
        let tickers = ["AMZN", "MSFT", "AAPL", "GOOG", "TSLA", "NVDA", "META"];
        for i in 0..200 {
            let ticker = tickers[i % tickers.len()];
            batcher.push("pk", &trade(ticker, i), i as i64, Some(format!("{i}").as_bytes()));
        }
        assert_eq!(batcher.len(), 200);
        let routed = batcher.take();
        assert!(batcher.is_empty());
        assert_eq!((routed.len(), routed.shard_id()), (200, "shard-7"));
        assert!(routed.parts().iter().all(|p| p.shard_id == "shard-7"));
        for (instance, records) in contents(&routed).into_iter().enumerate() {
            let mut last = -1;
            for (_, data, arrival, position) in records {
                let ticker = tickers[arrival as usize % tickers.len()];
                assert_eq!(owner(key_group(ticker.as_bytes()), 3), instance, "{ticker}");
                assert_eq!(data, trade(ticker, arrival as usize));
                assert_eq!(position, Some(format!("{arrival}").into_bytes()));
                assert!(arrival > last, "in shard order");
                last = arrival;
            }
        }
    }

    fn whole_of_one() -> OwnedBatch {
        let mut b = OwnedBatch::new("s");
        b.push("k", b"x", 1);
        b
    }

    #[test]
    fn a_batch_routed_later_is_split_as_the_source_would_have() {
        let router = Router::new(Grouping::PartitionKey, 2);
        let mut whole = OwnedBatch::new("s");
        whole.now_ms = 5;
        whole.watermark_ms = 7;
        let mut batcher = Batcher::new(&router, "s");
        for i in 0..100 {
            let key = format!("key-{i}");
            whole.push(&key, b"x", i);
            batcher.push(&key, b"x", i, None);
        }
        let mut routed = Routed::whole(whole);
        routed.route(&router);
        assert_eq!(contents(&routed), contents(&batcher.take()));
        assert!(routed.parts().iter().all(|p| (p.now_ms, p.watermark_ms) == (5, 7)));
        assert!(routed.parts().iter().all(|p| !p.is_empty()), "100 keys reach both instances");
        // Routed already, or one instance: as it is.
        let mut again = routed.clone();
        again.route(&router);
        assert_eq!(again, routed);
        let mut single = Routed::whole(whole_of_one());
        single.route(&Router::new(Grouping::PartitionKey, 1));
        assert_eq!(single, Routed::whole(whole_of_one()));
    }
}
