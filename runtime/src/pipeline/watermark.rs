//! The event-time watermark the host passes to every instance, and the rule it keeps.
//!
//! **The rule: the watermark never passes an event time that a record not yet processed may
//! carry.** Everything that can hold records back holds the watermark back:
//!
//! - A shard being read holds it at its *clock*: the latest event time the operator reported
//!   for its records, raised only by a read that proves the shard has nothing older (below).
//! - A shard started but with nothing processed yet holds it where it is (its clock is
//!   [`NO_WATERMARK`]; a restored shard's clock is its event time at the checkpoint).
//! - A shard read to its end holds it at its clock until children covering its whole hash
//!   range have started; they then hold it themselves, each from its start. A shard with no
//!   hash range (a file, the generator) has no children and stops counting at its end. In a
//!   lease term whose checkpoint says a shard was already read to its end (its last owner died
//!   before giving the lease up), the shard is not read again but holds the watermark at its
//!   clock for the whole term: its children, read in another term, go on with its windows.
//! - **Idleness is decided by a read, not by a clock.** A shard that has nothing to say must
//!   not stall the others, so an empty, caught-up read (no records, MillisBehindLatest 0)
//!   raises its clock to the newest event time processed anywhere *whose results the pipeline
//!   had collected before that read was sent*: whatever the shard gets later was written after
//!   those records had been read, so it is no older (for a producer that writes in event-time
//!   order per key). A shard that is throttled, retrying, backing off or behind sends no such
//!   read, so its clock stays. Instants are the host's own (when results were collected, when a
//!   call was sent): no comparison of clocks across machines.
//! - A shard this run will not read again (`--until-idle` found it caught up that long) holds
//!   nothing back: nothing of it is left for this run.
//!
//! The price: after a burst, the watermark waits for every quiet shard's next empty read,
//! about one poll interval. The watermark never goes back.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use weir_contract::NO_WATERMARK;
use weir_kinesis::HashRange;

/// How long the newest event times of past collections are kept, to answer for reads sent that long
/// ago: far more than a GetRecords call takes (a read sent earlier than that vouches nothing).
const HISTORY: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct ShardClock {
    /// The latest event time reported for its records (NO_WATERMARK: none yet).
    latest: i64,
    /// Raised by empty, caught-up reads: no unread record of the shard is older.
    vouched: i64,
    /// The hash keys it holds (None: a source without lineage).
    range: Option<HashRange>,
    /// The shards it continues.
    parents: Vec<String>,
}

impl ShardClock {
    fn clock(&self) -> i64 {
        self.latest.max(self.vouched)
    }
}

/// The per-shard clocks and the watermark made of them.
#[derive(Debug)]
pub struct Watermarks {
    /// Shards being read.
    shards: BTreeMap<String, ShardClock>,
    /// Shards read to their end whose hash range is not yet covered by started children.
    ended: BTreeMap<String, ShardClock>,
    /// Shards this run reads no more (`--until-idle`), with their clocks for checkpoints.
    done: BTreeMap<String, ShardClock>,
    /// Event times of shards not started yet, from a checkpoint.
    restored: BTreeMap<String, i64>,
    /// The newest event time processed anywhere.
    newest: i64,
    /// `(when results were collected, newest event time processed by then)`, both growing.
    history: VecDeque<(Instant, i64)>,
    /// The last entry dropped from `history`: a read sent at or after its instant vouches its
    /// time at least.
    floor: Option<(Instant, i64)>,
    current: i64,
}

impl Default for Watermarks {
    fn default() -> Self {
        Self::new()
    }
}

impl Watermarks {
    /// No shards yet.
    pub fn new() -> Self {
        Self {
            shards: BTreeMap::new(),
            ended: BTreeMap::new(),
            done: BTreeMap::new(),
            restored: BTreeMap::new(),
            newest: NO_WATERMARK,
            history: VecDeque::new(),
            floor: None,
            current: NO_WATERMARK,
        }
    }

    /// Go on from a checkpoint: the watermark then, and each shard's clock (taken up when the
    /// shard starts again).
    pub fn restore(&mut self, watermark_ms: i64, shards: impl IntoIterator<Item = (String, i64)>) {
        self.current = self.current.max(watermark_ms);
        self.restored.extend(shards);
    }

    /// `shard` starts being read; `parents` are the shards it continues, `range` the hash keys
    /// it holds. It holds the watermark from now on; a parent whose range its started children
    /// now cover stops holding it.
    pub fn started(&mut self, shard: &str, parents: &[String], range: Option<HashRange>) {
        let latest = self.restored.remove(shard).unwrap_or(NO_WATERMARK);
        self.shards.entry(shard.to_string()).or_insert(ShardClock {
            latest,
            vouched: NO_WATERMARK,
            range,
            parents: parents.to_vec(),
        });
        for parent in parents {
            if self.ended.get(parent).is_some_and(|p| self.children_cover(parent, p.range)) {
                self.ended.remove(parent);
            }
        }
    }

    /// Whether the started children of `parent` hold every key of `range`.
    fn children_cover(&self, parent: &str, range: Option<HashRange>) -> bool {
        let Some(range) = range else { return true };
        let mut children: Vec<HashRange> = self
            .shards
            .values()
            .filter(|c| c.parents.iter().any(|p| p == parent))
            .filter_map(|c| c.range)
            .collect();
        children.sort_by_key(|r| r.start);
        let mut next = range.start;
        for child in children {
            if child.start > next {
                return false;
            }
            if child.end >= range.end {
                return true;
            }
            next = next.max(child.end + 1);
        }
        false
    }

    /// `shard`'s clock, if it has one: no record of it not yet processed is older (what a
    /// checkpoint records, and a restart or a lease term holds the shard at).
    pub fn clock(&self, shard: &str) -> Option<i64> {
        let clock = self.shards.get(shard).or_else(|| self.ended.get(shard)).or_else(|| self.done.get(shard));
        let time = clock.map(ShardClock::clock).or_else(|| self.restored.get(shard).copied());
        time.filter(|&t| t != NO_WATERMARK)
    }

    /// The watermark last computed.
    pub fn last(&self) -> i64 {
        self.current
    }

    /// `shard`, read to its end before a checkpoint this run goes on from, has its children
    /// read elsewhere (another lease term): its keys' open windows are in this run's state, so
    /// it holds the watermark at `clock_ms` as long as this run lasts (a lease term ends once
    /// its first checkpoint records the shard finished).
    pub fn finished_before(&mut self, shard: &str, clock_ms: i64) {
        let clock = ShardClock { latest: clock_ms, vouched: NO_WATERMARK, range: None, parents: Vec::new() };
        self.ended.insert(shard.to_string(), clock);
    }

    /// `shard` was read to its end: it holds the watermark at its clock until children
    /// covering its hash range have started (at once, if it has none).
    pub fn ended(&mut self, shard: &str) {
        if let Some(clock) = self.shards.remove(shard)
            && clock.range.is_some()
        {
            self.ended.insert(shard.to_string(), clock);
        }
    }

    /// `shard` is not read again in this run (it was caught up for `--until-idle`): nothing of
    /// it is left for this run to process, so it holds nothing back.
    pub fn not_read_again(&mut self, shard: &str) {
        if let Some(clock) = self.shards.remove(shard) {
            self.done.insert(shard.to_string(), clock);
        }
    }

    /// A read of `shard` sent at `sent_at` came back empty with the shard caught up: nothing
    /// older than what had been processed when it was sent is left to read from it.
    pub fn caught_up(&mut self, shard: &str, sent_at: Instant) {
        let vouched = self.processed_before(sent_at);
        if let Some(clock) = self.shards.get_mut(shard) {
            if vouched > clock.vouched {
                tracing::debug!(
                    shard,
                    vouched,
                    latest = clock.latest,
                    "an empty, caught-up read raises the shard's clock"
                );
            }
            clock.vouched = clock.vouched.max(vouched);
        }
    }

    /// The newest event time of the results collected before `at`.
    fn processed_before(&self, at: Instant) -> i64 {
        let kept = self.history.partition_point(|&(ended, _)| ended < at);
        match kept.checked_sub(1).and_then(|i| self.history.get(i)) {
            Some(&(_, newest)) => newest,
            None => match self.floor {
                Some((ended, newest)) if ended < at => newest,
                _ => NO_WATERMARK,
            },
        }
    }

    /// The operator accepted records of `shard` up to event time `time_ms`.
    pub fn observe(&mut self, shard: &str, time_ms: i64) {
        self.newest = self.newest.max(time_ms);
        if let Some(clock) = self.shards.get_mut(shard).or_else(|| self.ended.get_mut(shard)) {
            clock.latest = clock.latest.max(time_ms);
        }
    }

    /// Results were collected at `now`: what they processed can vouch for reads sent from now on.
    pub fn collected(&mut self, now: Instant) {
        if self.newest == NO_WATERMARK || self.history.back().is_some_and(|&(_, t)| t == self.newest) {
            return;
        }
        self.history.push_back((now, self.newest));
        while let Some(&(ended, newest)) = self.history.front() {
            if now.saturating_duration_since(ended) <= HISTORY {
                break;
            }
            self.floor = Some((ended, newest));
            self.history.pop_front();
        }
    }

    /// The watermark now: the smallest clock of the shards holding it (it never goes back).
    pub fn current(&mut self) -> i64 {
        let holding = self.shards.values().chain(self.ended.values()).map(ShardClock::clock).min();
        if let Some(candidate) = holding {
            self.current = self.current.max(candidate);
        }
        self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Option<HashRange> = Some(HashRange::ALL);

    fn half(upper: bool) -> Option<HashRange> {
        let mid = u128::MAX / 2;
        Some(if upper {
            HashRange { start: mid + 1, end: u128::MAX }
        } else {
            HashRange { start: 0, end: mid }
        })
    }

    fn parents(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    /// Root shards (no parents) started, each with its hash range.
    fn started(shards: &[(&str, Option<HashRange>)]) -> Watermarks {
        let mut w = Watermarks::new();
        for (shard, range) in shards {
            w.started(shard, &[], *range);
        }
        w
    }

    /// Results of `times` (shard, event time) collected at `at`.
    fn collect(w: &mut Watermarks, at: Instant, times: &[(&str, i64)]) {
        for (shard, time) in times {
            w.observe(shard, *time);
        }
        w.collected(at);
    }

    #[test]
    fn the_slowest_shard_holds_the_watermark_and_a_shard_with_nothing_yet_holds_it_where_it_is() {
        let t0 = Instant::now();
        let mut w = started(&[("a", ALL), ("b", ALL)]);
        collect(&mut w, t0, &[("a", 100)]);
        assert_eq!(w.current(), NO_WATERMARK, "b has reported nothing yet");
        collect(&mut w, t0, &[("b", 40)]);
        assert_eq!(w.current(), 40);
        collect(&mut w, t0, &[("a", 150), ("b", 60)]);
        assert_eq!(w.current(), 60);
    }

    #[test]
    fn no_clock_makes_a_shard_idle_only_an_empty_caught_up_read_sent_after_results_came() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut w = started(&[("a", ALL), ("b", ALL)]);
        collect(&mut w, t0, &[("a", 100), ("b", 90)]);
        // b has been silent for ever: without a read it still holds.
        collect(&mut w, t0 + ms(10), &[("a", 200)]);
        assert_eq!(w.current(), 90);
        // An empty read of b sent before the results of 200 came vouches only for 100.
        w.caught_up("b", t0 + ms(5));
        assert_eq!(w.current(), 100);
        // One sent after it: b holds nothing older than 200.
        w.caught_up("b", t0 + ms(11));
        assert_eq!(w.current(), 200);
        // A burst: a's backlog (up to 900) processed; b's next read was sent before the burst
        // was processed, so b still holds at 200 and its burst records are not late.
        collect(&mut w, t0 + ms(20), &[("a", 900)]);
        w.caught_up("b", t0 + ms(19));
        assert_eq!(w.current(), 200);
        collect(&mut w, t0 + ms(30), &[("b", 850)]);
        assert_eq!(w.current(), 850);
    }

    #[test]
    fn a_read_vouches_for_what_was_processed_before_it_was_sent_or_nothing_if_that_is_forgotten() {
        let t0 = Instant::now();
        let mut w = started(&[("a", ALL), ("b", ALL)]);
        collect(&mut w, t0, &[("a", 10)]);
        collect(&mut w, t0 + Duration::from_secs(61), &[("a", 20)]);
        collect(&mut w, t0 + Duration::from_secs(122), &[("a", 30)]);
        w.caught_up("b", t0);
        assert_eq!(w.current(), NO_WATERMARK, "sent before any results came: nothing vouched");
        w.caught_up("b", t0 + Duration::from_secs(1));
        assert_eq!(w.current(), NO_WATERMARK, "older than what the history keeps: nothing vouched");
        w.caught_up("b", t0 + Duration::from_secs(62));
        assert_eq!(w.current(), 20, "the last entry dropped from the history still answers");
        w.caught_up("b", t0 + Duration::from_secs(123));
        assert_eq!(w.current(), 30);
    }

    #[test]
    fn a_split_parent_holds_until_both_children_started_and_each_child_until_it_reports() {
        let t0 = Instant::now();
        let mut w = started(&[("p", ALL), ("q", ALL)]);
        collect(&mut w, t0, &[("p", 100), ("q", 100)]);
        w.ended("p");
        // Several collections of q alone: p still holds at 100.
        for t in [200, 300, 400] {
            collect(&mut w, t0, &[("q", t)]);
            assert_eq!(w.current(), 100);
        }
        w.started("c1", &parents(&["p"]), half(false));
        collect(&mut w, t0, &[("q", 500), ("c1", 450)]);
        assert_eq!(w.current(), 100, "the upper half has not started");
        w.started("c2", &parents(&["p"]), half(true));
        assert_eq!(w.current(), 100, "c2 has reported nothing");
        collect(&mut w, t0, &[("c2", 420)]);
        assert_eq!(w.current(), 420);
    }

    #[test]
    fn a_merge_holds_at_the_first_parent_until_the_child_starts() {
        let t0 = Instant::now();
        let mut w = started(&[("p1", half(false)), ("p2", half(true))]);
        collect(&mut w, t0, &[("p1", 100), ("p2", 100)]);
        w.ended("p1");
        collect(&mut w, t0, &[("p2", 300)]);
        assert_eq!(w.current(), 100, "p1 ended, its keys go on in the child");
        w.ended("p2");
        w.started("c", &parents(&["p1", "p2"]), ALL);
        assert_eq!(w.current(), 100);
        collect(&mut w, t0, &[("c", 350)]);
        assert_eq!(w.current(), 350);
    }

    #[test]
    fn a_shard_not_read_again_in_this_run_holds_nothing_back_and_keeps_its_clock() {
        let mut w = started(&[("quiet", ALL), ("busy", ALL)]);
        w.observe("quiet", 10);
        w.observe("busy", 50);
        assert_eq!(w.current(), 10);
        w.not_read_again("quiet");
        assert_eq!(w.current(), 50);
        assert_eq!(w.clock("quiet"), Some(10), "a checkpoint resumes it from there");
    }

    #[test]
    fn a_shard_without_lineage_stops_counting_at_its_end() {
        let mut w = started(&[("file", None), ("other", None)]);
        w.observe("file", 10);
        w.observe("other", 50);
        w.ended("file");
        assert_eq!(w.current(), 50);
    }

    #[test]
    fn a_restored_shard_starts_from_its_own_event_time_not_the_watermark() {
        let t0 = Instant::now();
        let mut w = Watermarks::new();
        w.restore(500, [("behind".to_string(), 200)]);
        w.started("ahead", &[], ALL);
        w.started("behind", &[], ALL);
        collect(&mut w, t0, &[("ahead", 900)]);
        assert_eq!(w.current(), 500, "never back");
        collect(&mut w, t0, &[("behind", 600)]);
        assert_eq!(w.current(), 600);
        assert_eq!(w.clock("behind"), Some(600));
    }
}
