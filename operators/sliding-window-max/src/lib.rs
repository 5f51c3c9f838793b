//! weir's default operator: per ticker, the maximum price and the number of trades over sliding
//! windows, one output record per (ticker, window) that saw at least one trade.
//!
//! Windows are `[start, start + window)` with `start` a multiple of `slide` counted from the Unix
//! epoch, so a trade belongs to `window / slide` windows. State and results belong to the ticker
//! (the operator's grouping key), so the host sends every trade of a ticker to the same
//! instance whatever partition key the producer chose. In event time (the default) the operator
//! reports each trade's time to the host and a window fires when the host's watermark (the
//! smallest over the shards being read of the newest event time each has seen) minus
//! `out-of-orderness` reaches its end; in processing time it fires when the host's clock does.
//! Whatever is pending fires when the input ends.
//!
//! A trade is late, and goes to the dead-letter destination, only when every window it belongs
//! to has already fired; a trade behind the watermark that still belongs to an open window
//! counts in that window (Flink's rule for sliding windows with no allowed lateness) and, if
//! some of its windows fired without it, is reported as partly late (Flink says nothing), so
//! that the windows it missed are known to be incomplete.
//!
//! Layout: [`config`] (settings), [`trade`] (reading a record, with the fast path in
//! [`scan`] and event times in [`event_time`]), `keys` (tickers to key ids by their bytes),
//! [`panes`] (one key's windows), `result` (the result record, written by hand),
//! [`snapshot`] (the keyed state format, a key's entry read and written by `varint`); this file
//! holds the keys, the watermark and the timers that fire windows in order.
//!
//! The record path is written for wasm as much as for native code: no `memcmp`, UTF-8 check or
//! `fmax` per trade (calls in wasm), few loops (each turn checks the CPU deadline), and the hot
//! functions inlined into `process` (BENCHMARKS.md, issue 26).

pub mod config;
pub mod event_time;
mod keys;
pub mod panes;
mod result;
pub mod scan;
pub mod snapshot;
pub mod trade;
mod varint;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::rc::Rc;

use weir_operator::{Batch, Error, Grouping, INSTANCE_KEY, KeyedStates, Operator, Output, Settings};

pub use config::{Config, TimeMode};
use keys::KeyIndex;
use panes::Panes;
use result::{WindowText, timestamp};

/// "No time yet": below every real time.
const NEVER: i64 = i64::MIN;

/// What every trade of one batch is judged against: the time trades of processing-time
/// windows get, and the host's processing time (0: none given).
#[derive(Clone, Copy)]
struct Moment {
    now: i64,
    processing: bool,
    host_now: i64,
}

/// `first_end`, a window's end, or the end of the first window after `closed` (the end of the
/// last window closed; NEVER: none) if that is later.
#[inline(always)]
fn not_closed(config: &Config, first_end: i64, closed: i64) -> i64 {
    if closed == NEVER { first_end } else { first_end.max(config.first_end_after(closed)) }
}

/// A pane remembered by [`SlidingWindowMax::pane_of`]: `[start, end)` and the end of the first
/// window containing it (none at first: an empty range).
#[derive(Clone, Copy, Debug, Default)]
struct LastPane {
    start: i64,
    end: i64,
    first_end: i64,
}

/// A trade's ticker: the id of a key seen before, or a new one.
enum Ticker<'a> {
    Known(u32),
    New(&'a str),
}

/// One ticker's state.
#[derive(Debug)]
struct Key {
    ticker: Box<str>,
    /// The ticker as a JSON string, for its results: made at its first result, not when the
    /// key is made (a restore makes every key, and the swap waits for it).
    quoted: Option<Box<str>>,
    panes: Panes,
    /// End of the last window fired for this key (NEVER if none).
    last_fired_end: i64,
    /// End of the window this key's live timer fires (i64::MAX if none).
    timer: i64,
}

/// The sliding-window-max operator.
#[derive(Debug)]
pub struct SlidingWindowMax {
    config: Config,
    /// Reads trades; shared so a batch can use it while the state changes.
    parser: Rc<trade::TradeParser>,
    pane_ms: i64,
    /// The last pane a trade fell in: its start and end, and the end of the first window
    /// containing it (see [`Self::pane_of`]).
    last_pane: LastPane,
    keys: Vec<Key>,
    /// Ticker bytes to index in `keys`.
    index: KeyIndex,
    /// (window end, key) of pending windows, earliest first. An entry whose end is not its key's
    /// `timer` any more is stale and skipped.
    timers: BinaryHeap<Reverse<(i64, u32)>>,
    max_event_time: i64,
    watermark: i64,
    window_text: WindowText,
}

impl SlidingWindowMax {
    /// An operator with this configuration.
    pub fn new(config: Config) -> Self {
        Self {
            pane_ms: config.pane_ms(),
            last_pane: LastPane::default(),
            parser: Rc::new(trade::TradeParser::new(config.fields())),
            config,
            keys: Vec::new(),
            index: KeyIndex::default(),
            timers: BinaryHeap::new(),
            max_event_time: NEVER,
            watermark: NEVER,
            window_text: WindowText::default(),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The current watermark in ms (`i64::MIN` before the first trade).
    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    /// End of the first window after the one ending at `after` (or the first window at all)
    /// that contains the pane starting at `pane`.
    fn first_end_containing(&self, pane: i64, after: i64) -> i64 {
        not_closed(&self.config, self.config.first_end_after(pane), after)
    }

    fn key_id(&mut self, ticker: &str) -> u32 {
        if let Some(id) = self.index.get(ticker.as_bytes()) {
            return id;
        }
        let id = self.keys.len() as u32;
        self.keys.push(Key {
            ticker: ticker.into(),
            quoted: None,
            panes: Panes::new(),
            last_fired_end: NEVER,
            timer: i64::MAX,
        });
        self.index.insert(ticker.as_bytes(), id);
        id
    }

    /// Add one trade of `ticker` (its id if it has one: `known`) at `time`. `Err`: it is late
    /// (every window it belongs to was emitted for its ticker), and why; `Ok(Some(why))`: it
    /// counts in its open windows but is partly late.
    #[inline(always)]
    fn add(&mut self, ticker: Ticker<'_>, time: i64, price: f64) -> Result<Option<String>, String> {
        let known = match ticker {
            Ticker::Known(id) => Some(id),
            Ticker::New(_) => None,
        };
        // Windows of this ticker ending here or before are closed: fired, or passed by the
        // watermark while empty for it (a restored key may have fired past the watermark).
        let fired = known.map_or(NEVER, |id| self.keys[id as usize].last_fired_end);
        let closed = fired.max(self.watermark);
        // A window containing `time` ends after it: at or after `closed`, none is closed (the
        // usual case, kept to one comparison).
        let partly = if time < closed { self.lateness(time, closed)? } else { None };
        let (pane, first) = self.pane_of(time);
        let id = match ticker {
            Ticker::Known(id) => id,
            Ticker::New(ticker) => self.key_id(ticker),
        };
        let key = &mut self.keys[id as usize];
        key.panes.add(pane, price);
        // The window to fire for the trade is the first containing its pane that ends after
        // `closed`: at or after `first`, so only a key whose timer is later needs it worked out.
        if first < key.timer {
            let candidate = not_closed(&self.config, first, closed);
            if candidate < key.timer {
                key.timer = candidate;
                self.timers.push(Reverse((candidate, id)));
            }
        }
        Ok(partly)
    }

    /// The start of the pane `time` falls in, and the end of the first window containing that
    /// pane ([`Config::first_end_after`] its start). The last pane is remembered:
    /// consecutive trades nearly always share one, and each of these is an `i64` division (in
    /// wasm, with the engine's own checks around it).
    #[inline(always)]
    fn pane_of(&mut self, time: i64) -> (i64, i64) {
        let last = self.last_pane;
        if time >= last.start && time < last.end {
            return (last.start, last.first_end);
        }
        let start = time.div_euclid(self.pane_ms) * self.pane_ms;
        let first_end = self.config.first_end_after(start);
        self.last_pane = LastPane { start, end: start.saturating_add(self.pane_ms), first_end };
        (start, first_end)
    }

    /// For a trade at `time` behind `closed` (the end of its ticker's last closed window):
    /// `Err` if every window it belongs to is closed (late), `Ok(Some(why))` if some are
    /// (partly late), `Ok(None)` if none.
    fn lateness(&self, time: i64, closed: i64) -> Result<Option<String>, String> {
        let (w, s) = (self.config.window_ms, self.config.slide_ms);
        let first_end = self.config.first_end_after(time);
        let last_end = time.div_euclid(s) * s + w;
        if last_end <= closed {
            return Err(format!(
                "event time {} is {} ms behind the watermark {}, and every window it belongs to \
                 has been emitted (raise out-of-orderness, now {} ms, to wait longer)",
                timestamp(time),
                closed - time,
                timestamp(closed),
                self.config.out_of_orderness_ms
            ));
        }
        if first_end > closed {
            return Ok(None);
        }
        let missed_last = (closed - w).div_euclid(s) * s + w;
        let missed = (missed_last - first_end) / s + 1;
        Ok(Some(format!(
            "event time {} came after {missed} of its {} windows were emitted without it, [{}, {}) to [{}, {}); it counts in the others (raise out-of-orderness, now {} ms, to wait longer)",
            timestamp(time),
            (last_end - first_end) / s + 1,
            timestamp(first_end - w),
            timestamp(first_end),
            timestamp(missed_last - w),
            timestamp(missed_last),
            self.config.out_of_orderness_ms
        )))
    }

    /// One trade of a batch (its record's `index`), read by the scanner or by serde_json: added,
    /// or refused with the reason. The scanner's values come as plain arguments: in wasm, the
    /// `Result` of a `Trade` (its ticker a `Cow`) was built and moved through memory for every
    /// record (BENCHMARKS.md, issue 26).
    #[inline(always)]
    fn trade(
        &mut self,
        index: u32,
        ticker: &[u8],
        time_ms: Option<i64>,
        price: f64,
        at: Moment,
        out: &mut Output,
    ) {
        // A ticker is looked up by its bytes, and becomes text only when it is a new key.
        let ticker = match self.index.get(ticker) {
            Some(id) => Ticker::Known(id),
            None => match std::str::from_utf8(ticker) {
                Ok(t) => Ticker::New(t),
                // The parser gives UTF-8 only; refused rather than trusted all the same.
                Err(e) => {
                    out.reject(index, format!("field {:?} is not UTF-8: {e}", self.config.ticker_field));
                    return;
                }
            },
        };
        let time = if at.processing {
            at.now
        } else {
            match time_ms {
                Some(t) => t,
                None => {
                    out.reject(index, format!("missing field {:?}", self.config.event_time_field));
                    return;
                }
            }
        };
        // JSON has no NaN or infinities (serde_json refuses 1e999 as out of range), but a
        // price must be a number of 0 or more whatever the parser lets through.
        if price.is_nan() || price < 0.0 {
            out.reject(
                index,
                format!(
                    "field {:?}: {} is not a price (a number, 0 or more)",
                    self.config.price_field, price
                ),
            );
            return;
        }
        // Processing time 0 means the caller gave none (a test harness): nothing to compare.
        if !at.processing && at.host_now > 0 && time > at.host_now.saturating_add(self.config.max_ahead_ms) {
            out.reject(
                index,
                format!(
                    "event time {} is ahead of processing time {} by more than max-ahead ({} ms): a clock or data error",
                    timestamp(time),
                    timestamp(at.host_now),
                    self.config.max_ahead_ms
                ),
            );
            return;
        }
        match self.add(ticker, time, price) {
            Ok(None) => {}
            Ok(Some(partly)) => out.report_partly_late(index, partly),
            Err(late) => {
                out.reject_late(index, late);
                return;
            }
        }
        if !at.processing {
            out.observe_event_time(time);
            self.max_event_time = self.max_event_time.max(time);
        }
    }

    /// A record the scanner does not read: serde_json's path, out of line (it is rare).
    #[inline(never)]
    fn trade_read_by_serde(
        &mut self,
        parser: &trade::TradeParser,
        index: u32,
        data: &[u8],
        at: Moment,
        out: &mut Output,
    ) {
        match parser.parse_with_serde(data) {
            Ok(t) => self.trade(index, &t.ticker, t.time_ms, t.price, at, out),
            Err(reason) => out.reject(index, reason),
        }
    }

    /// The operator's event-time watermark for the host's: `out-of-orderness` behind it.
    fn event_watermark(&self, host_watermark_ms: i64) -> i64 {
        host_watermark_ms.saturating_sub(self.config.out_of_orderness_ms)
    }

    /// Move the watermark to `to` (never back) and fire the windows it passes.
    #[inline]
    fn advance_watermark(&mut self, to: i64, out: &mut Output) {
        if to > self.watermark {
            self.watermark = to;
        }
        self.fire_until(self.watermark, out);
    }

    /// Fire, in order of end, every pending window ending at or before `limit`.
    fn fire_until(&mut self, limit: i64, out: &mut Output) {
        while let Some(&Reverse((end, id))) = self.timers.peek() {
            if end > limit {
                break;
            }
            self.timers.pop();
            let w = self.config.window_ms;
            let s = self.config.slide_ms;
            let key = &mut self.keys[id as usize];
            if key.timer != end {
                continue;
            }
            let agg = key.panes.fire(end, w);
            key.last_fired_end = end;
            if agg.count > 0 {
                let quoted = key.quoted.get_or_insert_with(|| result::quoted(&key.ticker));
                self.window_text.emit(out, &key.ticker, quoted, end - w, end, agg);
            }
            // The next window with a pane in it: end + slide if a pane remains inside it, else
            // the first window containing the next pane.
            key.timer = match key.panes.first_from(end + s - w) {
                None => i64::MAX,
                Some(pane) => self.config.first_end_after(pane).max(end + s),
            };
            if key.timer != i64::MAX {
                self.timers.push(Reverse((key.timer, id)));
            }
        }
    }
}

impl Operator for SlidingWindowMax {
    fn init(settings: &Settings) -> Result<Self, Error> {
        Ok(Self::new(Config::from_settings(settings)?))
    }

    fn grouping(&self) -> Grouping {
        Grouping::JsonField(self.config.ticker_field.clone())
    }

    fn process(&mut self, batch: &Batch<'_>, out: &mut Output) -> Result<(), Error> {
        let parser = Rc::clone(&self.parser);
        let processing = self.config.time == TimeMode::Processing;
        // Windows the host's watermark passed (or that became due through a restore) fire first.
        if processing {
            self.fire_until(self.watermark, out);
        } else {
            self.advance_watermark(self.event_watermark(batch.watermark_ms()), out);
        }
        let now = batch.now_ms().max(self.watermark);
        let at = Moment { now, processing, host_now: batch.now_ms() };
        for (index, data) in batch.data() {
            match parser.scan(data) {
                Some((time, ticker, price)) => self.trade(index, ticker, Some(time), price, at, out),
                None => self.trade_read_by_serde(&parser, index, data, at, out),
            }
        }
        if processing {
            self.advance_watermark(now, out);
        }
        Ok(())
    }

    fn tick(&mut self, now_ms: i64, watermark_ms: i64, out: &mut Output) -> Result<(), Error> {
        let to = match self.config.time {
            TimeMode::Processing => now_ms,
            TimeMode::Event => self.event_watermark(watermark_ms),
        };
        self.advance_watermark(to, out);
        Ok(())
    }

    fn finish(&mut self, _now_ms: i64, out: &mut Output) -> Result<(), Error> {
        self.fire_until(i64::MAX, out);
        Ok(())
    }

    fn snapshot(&self, out: &mut KeyedStates) -> Result<(), Error> {
        out.push_with(INSTANCE_KEY, |buf| {
            snapshot::encode_instance(self.max_event_time, self.watermark, buf)
        })?;
        for key in self.keys.iter().filter(|k| !k.panes.is_empty()) {
            // Every window ending at or before the watermark has fired or was empty when the
            // watermark passed it, so the key is closed through the later of the two. Stored per
            // key, this stays right when keys of instances with different watermarks merge.
            let closed_through = key.last_fired_end.max(self.watermark);
            out.push_with(&key.ticker, |buf| {
                snapshot::encode_key(closed_through, key.panes.iter(), buf);
                Ok::<_, Error>(())
            })?;
        }
        Ok(())
    }

    fn restore(&mut self, state: &KeyedStates) -> Result<(), Error> {
        self.keys.reserve(state.len());
        self.index.reserve(state.len());
        for entry in state.iter() {
            if entry.is_instance_wide() {
                let (max_event_time, watermark) = snapshot::decode_instance(entry.state)?;
                self.max_event_time = self.max_event_time.max(max_event_time);
                self.watermark = self.watermark.max(watermark);
                continue;
            }
            let (closed_through, panes) = snapshot::decode_key(entry.state)
                .map_err(|e| Error::new(format!("state of key {:?}: {e}", entry.key)))?;
            let id = self.key_id(entry.key);
            let key = &mut self.keys[id as usize];
            if !key.panes.is_empty() {
                return Err(Error::new(format!("state of key {:?} was given twice", entry.key)));
            }
            key.panes = Panes::restore(panes, closed_through);
            key.last_fired_end = closed_through;
        }
        // Timers are derived state: recompute them from the panes.
        for id in 0..self.keys.len() {
            let key = &self.keys[id];
            let Some(first) = key.panes.iter().next().map(|p| p.start) else { continue };
            let end = self.first_end_containing(first, key.last_fired_end);
            self.keys[id].timer = end;
            self.timers.push(Reverse((end, id as u32)));
        }
        Ok(())
    }
}

weir_operator::export_operator!(SlidingWindowMax);
