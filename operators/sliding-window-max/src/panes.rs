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

use std::collections::VecDeque;

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
    panes: VecDeque<Pane>,
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
        self.panes.is_empty()
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Pane> + Clone {
        self.panes.iter()
    }

    /// Add a trade at `pane_start` with `price`.
    #[inline(always)]
    pub fn add(&mut self, pane_start: i64, price: f64) {
        // In-order input lands in the last pane or a new one after it.
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
        self.enter_until(end);
        self.entered_end = end;
        self.drop_before(end - window_ms);
        let front = if self.split > 0 { self.panes[0].suffix_max } else { f64::NEG_INFINITY };
        Aggregate { max: max(front, self.back_max), count: self.entered_count }
    }

    /// The first pane starting at or after `start`.
    pub fn first_from(&self, start: i64) -> Option<i64> {
        self.panes.iter().map(|p| p.start).find(|&s| s >= start)
    }
}

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
}
