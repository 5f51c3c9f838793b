//! One key's window state: its non-empty panes, and a two-stack aggregator over the panes of
//! the window that fires next, so that both a trade and a window cost O(1) amortized whatever
//! the window and slide are.
//!
//! Panes are `pane_ms` long (the gcd of window and slide), so a window is a run of whole panes
//! and a trade updates exactly one pane. Windows of one key fire in order of their end; the
//! panes that have entered the aggregator are those that start before the end of the last
//! window fired (`entered_end`), kept as a prefix of `panes`. Firing the next window pushes the
//! panes that now fall inside it onto the back stack and pops those that fell out of it from the
//! front stack; the front stack holds suffix maxima, rebuilt from the back stack when it runs
//! empty (each pane moves across once). A trade that lands in a pane that has already entered
//! (possible only for a trade behind the watermark that still belongs to an open window) fixes
//! the aggregates in place.
//!
//! The newest pane is kept apart (`open`) until a window needs it or a newer pane opens, so
//! that a trade in it, nearly every trade, touches this struct and not the deque's buffer
//! elsewhere in memory: one dependent cache miss fewer per trade.

use std::collections::{VecDeque, vec_deque};

/// The larger of two prices. Prices are never NaN (refused before they reach a pane, and in
/// restored state), so a comparison does what `f64::max` does without its NaN handling, which
/// in wasm is a call to `fmax` (1.5% of `weir run`'s samples).
#[inline]
fn max(a: f64, b: f64) -> f64 {
    if b > a { b } else { a }
}

/// A pane: the trades of one key whose time falls in `[start, start + pane_ms)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pane {
    pub start: i64,
    pub max: f64,
    pub count: u64,
    /// Max of `panes[i..split]`, valid while the pane is on the front stack.
    suffix_max: f64,
}

impl Pane {
    pub fn new(start: i64, max: f64, count: u64) -> Self {
        Self { start, max, count, suffix_max: f64::NEG_INFINITY }
    }
}

/// The maximum price and trade count of one window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Aggregate {
    pub max: f64,
    pub count: u64,
}

/// One key's panes and the aggregator over those that entered.
#[derive(Clone, Debug)]
pub struct Panes {
    /// The panes before `open`, in order of start.
    panes: VecDeque<Pane>,
    /// The newest pane, if kept apart: it starts after every pane in `panes` and at or after
    /// `entered_end`, so it has not entered.
    open: Option<Pane>,
    /// `panes[..entered]` are in the aggregator.
    entered: usize,
    /// `panes[..split]` are the front stack, `panes[split..entered]` the back stack.
    split: usize,
    back_max: f64,
    entered_count: u64,
    /// Panes starting before this have entered (the end of the last window fired).
    entered_end: i64,
}

impl Default for Panes {
    fn default() -> Self {
        Self::new()
    }
}

impl Panes {
    pub fn new() -> Self {
        Self {
            panes: VecDeque::new(),
            open: None,
            entered: 0,
            split: 0,
            back_max: f64::NEG_INFINITY,
            entered_count: 0,
            entered_end: i64::MIN,
        }
    }

    /// Panes restored from a snapshot, with `entered_end` the end of the last window fired.
    /// The snapshot holds them in order (its decoder refuses anything else), so they are taken
    /// as they are, with no copy: a swap waits for every key's restore.
    pub fn restore(panes: Vec<Pane>, entered_end: i64) -> Self {
        let mut p = Self::new();
        p.panes = VecDeque::from(panes);
        if !p.panes.iter().is_sorted_by_key(|pane| pane.start) {
            p.panes.make_contiguous().sort_by_key(|pane| pane.start);
        }
        p.enter_until(entered_end);
        p.entered_end = entered_end;
        p
    }

    pub fn is_empty(&self) -> bool {
        self.panes.is_empty() && self.open.is_none()
    }

    /// The panes in order of start.
    pub fn iter(&self) -> Iter<'_> {
        Iter { older: self.panes.iter(), open: self.open.as_ref() }
    }

    /// Add a trade at `pane_start` with `price`.
    #[inline(always)]
    pub fn add(&mut self, pane_start: i64, price: f64) {
        if let Some(open) = &mut self.open
            && open.start == pane_start
        {
            open.max = max(open.max, price);
            open.count += 1;
        } else {
            self.add_elsewhere(pane_start, price);
        }
    }

    /// A trade outside the open pane: it opens a newer pane (in-order input), or lands in an
    /// older one.
    #[inline]
    fn add_elsewhere(&mut self, pane_start: i64, price: f64) {
        let newest = self.open.as_ref().or(self.panes.back()).map(|p| p.start);
        if newest.is_none_or(|newest| pane_start > newest) && pane_start >= self.entered_end {
            self.close_open();
            self.open = Some(Pane::new(pane_start, price, 1));
        } else if self.open.is_none() && newest == Some(pane_start) && self.entered < self.panes.len() {
            // The newest pane, not entered, was closed by a window or a restore: open it again.
            self.open = self.panes.pop_back();
            self.add(pane_start, price);
        } else {
            self.add_older(pane_start, price);
        }
    }

    /// The open pane, if any, joins the others (it stays the newest).
    fn close_open(&mut self) {
        if let Some(open) = self.open.take() {
            self.panes.push_back(open);
        }
    }

    /// Add a trade at `pane_start`, which is not after every pane, to `panes`.
    fn add_older(&mut self, pane_start: i64, price: f64) {
        let mut i = self.panes.len();
        while i > 0 && self.panes[i - 1].start > pane_start {
            i -= 1;
        }
        if i > 0 && self.panes[i - 1].start == pane_start {
            let at = i - 1;
            let pane = &mut self.panes[at];
            pane.max = max(pane.max, price);
            pane.count += 1;
            if at < self.entered {
                self.entered_count += 1;
                self.raise_entered(at, price);
            }
        } else {
            self.panes.insert(i, Pane::new(pane_start, price, 1));
            if pane_start < self.entered_end {
                // Lands among the entered panes (i <= entered by sort order).
                self.entered += 1;
                self.entered_count += 1;
                if i < self.split {
                    self.split += 1;
                    let below =
                        if i + 1 < self.split { self.panes[i + 1].suffix_max } else { f64::NEG_INFINITY };
                    self.panes[i].suffix_max = max(below, price);
                }
                self.raise_entered(i, price);
            }
        }
    }

    /// A price was added to entered pane `at`: raise the aggregates that cover it.
    fn raise_entered(&mut self, at: usize, price: f64) {
        if at >= self.split {
            self.back_max = max(self.back_max, price);
        } else {
            for pane in self.panes.range_mut(..=at) {
                pane.suffix_max = max(pane.suffix_max, price);
            }
        }
    }

    fn enter_until(&mut self, end: i64) {
        while let Some(pane) = self.panes.get(self.entered) {
            if pane.start >= end {
                break;
            }
            self.back_max = max(self.back_max, pane.max);
            self.entered_count += pane.count;
            self.entered += 1;
        }
    }

    fn drop_before(&mut self, start: i64) {
        while let Some(front) = self.panes.front() {
            if front.start >= start {
                break;
            }
            if self.entered == 0 {
                self.panes.pop_front();
                continue;
            }
            if self.split == 0 {
                // Move the back stack to the front, as suffix maxima.
                let mut running = f64::NEG_INFINITY;
                for pane in self.panes.range_mut(..self.entered).rev() {
                    running = max(running, pane.max);
                    pane.suffix_max = running;
                }
                self.split = self.entered;
                self.back_max = f64::NEG_INFINITY;
            }
            if let Some(pane) = self.panes.pop_front() {
                self.entered_count -= pane.count;
            }
            self.entered -= 1;
            self.split -= 1;
        }
    }

    /// The aggregate of the window `[end - window_ms, end)`; panes before it are dropped. Windows
    /// must be asked for in increasing order of `end`.
    pub fn fire(&mut self, end: i64, window_ms: i64) -> Aggregate {
        if self.open.is_some_and(|open| open.start < end) {
            self.close_open();
        }
        self.enter_until(end);
        self.entered_end = end;
        self.drop_before(end - window_ms);
        let front = if self.split > 0 { self.panes[0].suffix_max } else { f64::NEG_INFINITY };
        Aggregate { max: max(front, self.back_max), count: self.entered_count }
    }

    /// The first pane starting at or after `start`.
    pub fn first_from(&self, start: i64) -> Option<i64> {
        self.iter().map(|p| p.start).find(|&s| s >= start)
    }
}

/// A key's panes in order of start ([`Panes::iter`]).
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    older: vec_deque::Iter<'a, Pane>,
    open: Option<&'a Pane>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a Pane;

    fn next(&mut self) -> Option<&'a Pane> {
        self.older.next().or_else(|| self.open.take())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.older.len() + usize::from(self.open.is_some());
        (n, Some(n))
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force: max and count over panes in the window.
    fn brute(panes: &[(i64, f64)], start: i64, end: i64) -> Aggregate {
        let inside = panes.iter().filter(|(s, _)| (start..end).contains(s));
        Aggregate {
            max: inside.clone().map(|(_, p)| *p).fold(f64::NEG_INFINITY, f64::max),
            count: inside.count() as u64,
        }
    }

    #[test]
    fn sliding_aggregates_match_brute_force_including_late_inserts() {
        // pane = 1, window = 4: windows end at 4, 5, 6, ...
        let mut trades: Vec<(i64, f64)> = Vec::new();
        let mut p = Panes::new();
        let add = |p: &mut Panes, trades: &mut Vec<(i64, f64)>, s: i64, price: f64| {
            p.add(s, price);
            trades.push((s, price));
        };
        for (s, price) in [(0, 5.0), (1, 3.0), (2, 9.0), (3, 1.0), (4, 2.0)] {
            add(&mut p, &mut trades, s, price);
        }
        assert_eq!(p.fire(4, 4), brute(&trades, 0, 4));
        assert_eq!(p.fire(5, 4), brute(&trades, 1, 5));
        // Behind the last fired end: lands in entered panes, front and back stacks both.
        add(&mut p, &mut trades, 2, 11.0);
        add(&mut p, &mut trades, 4, 12.0);
        add(&mut p, &mut trades, 6, 0.5);
        assert_eq!(p.fire(6, 4), brute(&trades, 2, 6));
        assert_eq!(p.fire(7, 4), brute(&trades, 3, 7));
        add(&mut p, &mut trades, 5, 20.0);
        assert_eq!(p.fire(8, 4), brute(&trades, 4, 8));
        assert_eq!(p.fire(12, 4), brute(&trades, 8, 12));
        assert!(p.is_empty());
    }

    /// What a key's panes may be asked to do, as the operator asks it (pane = 1, window = 4,
    /// slide = 1): a trade in a pane of a window not yet fired, the next window fired, or the
    /// panes snapshotted and restored.
    #[derive(Clone, Debug)]
    enum Op {
        /// A trade `back` panes before the newest pane seen plus 2 (so in order or ahead,
        /// mostly), kept inside the windows not yet fired.
        Add {
            back: i64,
            price: u8,
        },
        /// Fire the window ending `ahead` panes after the last fired.
        Fire {
            ahead: i64,
        },
        Restore,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            6 => (0i64..6, any::<u8>()).prop_map(|(back, price)| Op::Add { back, price }),
            2 => (1i64..3).prop_map(|ahead| Op::Fire { ahead }),
            1 => Just(Op::Restore),
        ]
    }

    proptest::proptest! {
        #[test]
        fn every_window_and_every_pane_kept_match_brute_force(ops in proptest::collection::vec(op(), 1..120)) {
            const W: i64 = 4;
            let mut p = Panes::new();
            let mut trades: Vec<(i64, f64)> = Vec::new();
            let (mut newest, mut fired) = (0i64, i64::MIN);
            for op in ops {
                match op {
                    Op::Add { back, price } => {
                        // The first window not fired ends at `fired + 1`: its first pane is the
                        // earliest a trade may land in.
                        let earliest = if fired == i64::MIN { i64::MIN } else { fired + 1 - W };
                        let start = (newest + 2 - back).max(earliest);
                        newest = newest.max(start);
                        p.add(start, f64::from(price));
                        trades.push((start, f64::from(price)));
                    }
                    Op::Fire { ahead } => {
                        let end = if fired == i64::MIN { W } else { fired + ahead };
                        proptest::prop_assert_eq!(p.fire(end, W), brute(&trades, end - W, end), "window ending {}", end);
                        fired = end;
                    }
                    Op::Restore => {
                        p = Panes::restore(p.iter().copied().collect(), fired);
                    }
                }
                // The panes kept: every pane with a trade from the start of the last window
                // fired on (older ones are dropped), in order, each with its trades' max and
                // count.
                let from = if fired == i64::MIN { i64::MIN } else { fired - W };
                let mut expected: Vec<(i64, f64, u64)> = Vec::new();
                let mut sorted: Vec<(i64, f64)> = trades.iter().copied().filter(|(s, _)| *s >= from).collect();
                sorted.sort_by_key(|(s, _)| *s);
                for (s, price) in sorted {
                    match expected.last_mut() {
                        Some(last) if last.0 == s => {
                            last.1 = last.1.max(price);
                            last.2 += 1;
                        }
                        _ => expected.push((s, price, 1)),
                    }
                }
                let kept: Vec<(i64, f64, u64)> = p.iter().map(|pane| (pane.start, pane.max, pane.count)).collect();
                proptest::prop_assert_eq!(p.iter().len(), kept.len());
                proptest::prop_assert_eq!(p.is_empty(), kept.is_empty());
                proptest::prop_assert_eq!(kept, expected);
            }
        }
    }
}
