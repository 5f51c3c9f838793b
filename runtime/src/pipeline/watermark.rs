//! The event-time watermark the host passes to every instance.
//!
//! Per shard, the host keeps the latest event time the operator reported for records of that
//! shard. The watermark is the smallest of them over the shards being read that are not idle,
//! so a shard behind (a backlog, a slow reader) holds the others back instead of seeing its
//! records come late. A shard is idle once it has delivered no records for `idle_after`: it
//! then holds nothing back until it delivers again. When every shard is idle, nothing is
//! holding back and the watermark is the latest of them all. A shard read to its end (after a
//! split or merge) stops counting. The watermark never goes back.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use weir_contract::NO_WATERMARK;

/// How long a shard may deliver nothing before it stops holding back the watermark, by
/// default: a shard behind is read again at once, so a shard silent this long is caught up.
pub const DEFAULT_IDLE_AFTER: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct ShardClock {
    latest: i64,
    last_batch: Instant,
}

/// The per-shard event times and the watermark made of them.
#[derive(Debug)]
pub struct Watermarks {
    idle_after: Duration,
    shards: BTreeMap<String, ShardClock>,
    /// Event times of shards not started yet, from a checkpoint.
    restored: BTreeMap<String, i64>,
    current: i64,
}

impl Watermarks {
    /// No shards yet; a shard silent for `idle_after` is idle.
    pub fn new(idle_after: Duration) -> Self {
        Self { idle_after, shards: BTreeMap::new(), restored: BTreeMap::new(), current: NO_WATERMARK }
    }

    /// Go on from a checkpoint: the watermark then, and each shard's latest event time (taken
    /// up when the shard starts again).
    pub fn restore(&mut self, watermark_ms: i64, shards: impl IntoIterator<Item = (String, i64)>) {
        self.current = self.current.max(watermark_ms);
        self.restored.extend(shards);
    }

    /// `shard` starts being read at `now`.
    pub fn started(&mut self, shard: &str, now: Instant) {
        let latest = self.restored.remove(shard).unwrap_or(NO_WATERMARK);
        self.shards.entry(shard.to_string()).or_insert(ShardClock { latest, last_batch: now });
    }

    /// The latest event time reported for `shard`, if any.
    pub fn latest(&self, shard: &str) -> Option<i64> {
        let latest = self.shards.get(shard).map(|c| c.latest).or_else(|| self.restored.get(shard).copied());
        latest.filter(|&t| t != NO_WATERMARK)
    }

    /// The watermark last computed.
    pub fn last(&self) -> i64 {
        self.current
    }

    /// `shard` was read to its end.
    pub fn ended(&mut self, shard: &str) {
        self.shards.remove(shard);
    }

    /// `shard` delivered records at `now`.
    pub fn delivered(&mut self, shard: &str, now: Instant) {
        if let Some(clock) = self.shards.get_mut(shard) {
            clock.last_batch = now;
        }
    }

    /// The operator accepted records of `shard` up to event time `time_ms`.
    pub fn observe(&mut self, shard: &str, time_ms: i64) {
        if let Some(clock) = self.shards.get_mut(shard) {
            clock.latest = clock.latest.max(time_ms);
        }
    }

    /// The watermark at `now`.
    pub fn current(&mut self, now: Instant) -> i64 {
        let active =
            self.shards.values().filter(|c| now.saturating_duration_since(c.last_batch) < self.idle_after);
        let candidate = match active.map(|c| c.latest).min() {
            Some(min) => min,
            None => self.shards.values().map(|c| c.latest).max().unwrap_or(NO_WATERMARK),
        };
        self.current = self.current.max(candidate);
        self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slowest_active_shard_holds_the_watermark_and_idle_ones_do_not() {
        let t0 = Instant::now();
        let mut w = Watermarks::new(Duration::from_secs(5));
        w.started("a", t0);
        w.started("b", t0);
        w.observe("a", 100);
        assert_eq!(w.current(t0), NO_WATERMARK, "b has reported nothing yet");
        w.observe("b", 40);
        assert_eq!(w.current(t0), 40);
        w.delivered("a", t0 + Duration::from_secs(4));
        w.observe("a", 150);
        // b has been silent for 6 s: idle, so a alone decides.
        assert_eq!(w.current(t0 + Duration::from_secs(6)), 150);
        // b delivers again (behind): the watermark does not go back.
        w.delivered("b", t0 + Duration::from_secs(7));
        w.observe("b", 60);
        assert_eq!(w.current(t0 + Duration::from_secs(7)), 150);
        // Both idle: the latest of all.
        w.observe("b", 400);
        assert_eq!(w.current(t0 + Duration::from_secs(60)), 400);
        // An ended shard stops counting.
        w.started("c", t0 + Duration::from_secs(60));
        w.observe("c", 500);
        w.ended("b");
        assert_eq!(w.current(t0 + Duration::from_secs(61)), 500);
    }
}
