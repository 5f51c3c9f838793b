// weir's reference operator in JavaScript: per ticker, the maximum price and the number of
// trades over sliding windows, one output record per (ticker, window) that saw at least one
// trade.
//
// The same settings, grouping (TICKER), windows, outputs and lateness rules as the Rust
// operator (operators/sliding-window-max) and the Python one (operators/sliding-window-max-py):
// windows are [start, start + window) with start a multiple of slide from the Unix epoch; in
// event time a window fires when the host's watermark minus out-of-orderness reaches its end,
// in processing time when the host's clock does; what is pending fires when the input ends. A
// trade is late (dead-lettered) only when every window it belongs to fired; one that missed
// some counts in the others and is reported as partly late. State is the Python version's
// JSON behind format byte 1, so either reads the other's.

import {
  INSTANCE_KEY,
  JsonField,
  NO_WATERMARK,
  Operator,
  OperatorError,
  codec,
  exportOperator,
} from "weir-operator";

const FORMAT = 1;
const NEVER = NO_WATERMARK;
const END = Number.MAX_VALUE;
const KNOWN = ["window", "slide", "time", "out-of-orderness", "max-ahead", "event-time-field", "ticker-field", "price-field"];
const DURATION = "a duration such as 60s, 500ms or 1m";
const decoder = new TextDecoder("utf-8", { fatal: true });

/** `60s`, `1m 30s`, `500ms`, `2h` or a number of milliseconds. */
export function durationMs(value) {
  if (/^\s*-?\d+\s*$/.test(value)) return Number(value);
  const m = /^\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?!s))?\s*(?:(\d+)\s*s)?\s*(?:(\d+)\s*ms)?\s*$/.exec(value);
  if (!m || !m.slice(1).some((g) => g !== undefined)) throw new Error("write a duration such as 60s, 500ms or 1m");
  const [h, min, s, ms] = m.slice(1).map((g) => Number(g ?? 0));
  return ((h * 60 + min) * 60 + s) * 1000 + ms;
}

const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/** An ISO-8601 date-time with or without offset (none means UTC) as epoch ms. */
export function parseTime(text) {
  const m = ISO.exec(text);
  const bad = () => new OperatorError(`${JSON.stringify(text)} is not an ISO-8601 date-time such as 2026-11-25T10:00:00.123`);
  if (!m) throw bad();
  const [, y, mo, d, h = "0", mi = "0", s = "0", fraction = "", zone] = m;
  const [year, month, day, hour, minute, second] = [y, mo, d, h, mi, s].map(Number);
  if (month < 1 || month > 12 || day < 1 || day > new Date(Date.UTC(year, month, 0)).getUTCDate() || hour > 23 || minute > 59 || second > 59) {
    throw bad();
  }
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, Number((fraction + "000").slice(0, 3)));
  let ms = date.getTime();
  if (zone && zone.toUpperCase() !== "Z") {
    const sign = zone[0] === "-" ? -1 : 1;
    const digits = zone.slice(1).replace(":", "");
    ms -= sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || 0)) * 60_000;
  }
  return ms;
}

/** Event times as epoch ms, remembering the last minute seen: consecutive trades almost
 * always fall in the same minute, and a time written `YYYY-MM-DDTHH:MM:SS.fff` in that minute
 * only needs its seconds and milliseconds read (as the Rust operator does). */
export class EventTimes {
  constructor() {
    this.prefix = "";
    this.minuteMs = 0;
  }

  parse(text) {
    if (text.length === 23 && text[16] === ":" && text[19] === "." && text.startsWith(this.prefix) && this.prefix) {
      const offset = millisIntoMinute(text);
      if (offset >= 0) return this.minuteMs + offset;
    }
    const ms = parseTime(text);
    if (text.length === 23 && text[16] === ":" && text[19] === "." && ms >= 0) {
      const offset = millisIntoMinute(text);
      if (offset >= 0) {
        this.prefix = text.slice(0, 16);
        this.minuteMs = ms - offset;
      }
    }
    return ms;
  }
}

/** `SS.fff` at 17..23 of a time as ms into its minute, or -1 if they are not digits or the
 * seconds pass 59. */
function millisIntoMinute(text) {
  let ms = 0;
  for (const i of [17, 18, 20, 21, 22]) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    ms = ms * 10 + d;
  }
  return ms < 60_000 ? ms : -1;
}

/** A time as RFC 3339 UTC with milliseconds, as the Rust operator writes it. */
export function timestamp(ms) {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? String(ms) : date.toISOString();
}

const floorDiv = (a, b) => Math.floor(a / b);

/** Refuse `text` (a JSON object already parsed) if one of `names` is a key of the top-level
 * object twice, as serde_json refuses it for a struct. */
function duplicateCheck(text, names) {
  const seen = new Set();
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
      if (depth === 1 && expectKey) {
        const key = JSON.parse(text.slice(i, end + 1));
        if (names.includes(key) && seen.has(key)) throw new OperatorError(`duplicate field ${JSON.stringify(key)}`);
        seen.add(key);
        expectKey = false;
      }
      i = end;
    } else if (c === "{" || c === "[") {
      depth++;
      expectKey = c === "{" && depth === 1;
    } else if (c === "}" || c === "]") {
      depth--;
    } else if (c === "," && depth === 1) {
      expectKey = true;
    }
  }
}

function gcd(a, b) {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** One ticker's state: its panes (start -> [max, count]), the end of its last fired window,
 * and the end of the window its live timer fires. */
class Key {
  constructor(ticker) {
    /** The ticker as a JSON string, as results write it. */
    this.quoted = JSON.stringify(ticker);
    this.panes = new Map();
    this.lastFiredEnd = NEVER;
    this.timer = END;
  }

  /** Count a trade at `price` in `pane`; true when `candidate`, the first window still open
   * that holds the pane, ends before the key's timer, which it then becomes. */
  count(pane, price, candidate) {
    const slot = this.panes.get(pane);
    if (slot === undefined) {
      this.panes.set(pane, [price, 1]);
    } else {
      if (price > slot[0]) slot[0] = price;
      slot[1] += 1;
    }
    if (candidate >= this.timer) return false;
    this.timer = candidate;
    return true;
  }
}

/** Pending windows (end, ticker), earliest first: a binary heap. */
class Timers {
  constructor() {
    this.heap = [];
  }

  get length() {
    return this.heap.length;
  }

  peek() {
    return this.heap[0];
  }

  // No destructuring here or in the callers: in componentize-js's interpreter an array
  // pattern runs the iterator protocol: here and in `fireUntil` it was more than a quarter of
  // the operator's time (3.22-3.34 against 2.29-2.45 CPU-s without, 200,000 trades).
  static less(a, b) {
    return a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
  }

  push(entry) {
    const h = this.heap;
    h.push(entry);
    for (let i = h.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      const entry = h[i];
      if (!Timers.less(entry, h[parent])) break;
      h[i] = h[parent];
      h[parent] = entry;
      i = parent;
    }
  }

  pop() {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let least = i;
        if (l < h.length && Timers.less(h[l], h[least])) least = l;
        if (r < h.length && Timers.less(h[r], h[least])) least = r;
        if (least === i) break;
        const entry = h[i];
        h[i] = h[least];
        h[least] = entry;
        i = least;
      }
    }
    return top;
  }
}

class Late extends Error {}

export class SlidingWindowMax extends Operator {
  static operatorName = "sliding-window-max";
  static version = "0.2.0";

  constructor(settings) {
    super(settings);
    settings.checkKnown(KNOWN);
    const field = (v) => {
      if (!v) throw new Error("a field name cannot be empty");
      return v;
    };
    this.windowMs = settings.parseOr("window", 60_000, durationMs, DURATION);
    this.slideMs = settings.parseOr("slide", 10_000, durationMs, DURATION);
    this.processing = settings.parseOr(
      "time",
      false,
      (v) => {
        if (v !== "event" && v !== "processing") throw new Error("expected event or processing");
        return v === "processing";
      },
      "event or processing",
    );
    this.outOfOrdernessMs = settings.parseOr("out-of-orderness", 1_000, durationMs, DURATION);
    this.maxAheadMs = settings.parseOr("max-ahead", 86_400_000, durationMs, DURATION);
    this.timeField = settings.parseOr("event-time-field", "EVENT_TIME", field, "a field name");
    this.tickerField = settings.parseOr("ticker-field", "TICKER", field, "a field name");
    this.priceField = settings.parseOr("price-field", "PRICE", field, "a field name");
    if (this.windowMs <= 0 || this.slideMs <= 0) {
      throw new OperatorError(`window (${this.windowMs} ms) and slide (${this.slideMs} ms) must both be positive`);
    }
    if (this.slideMs > this.windowMs) {
      throw new OperatorError(
        `slide (${this.slideMs} ms) is longer than window (${this.windowMs} ms): trades between windows would belong to none; use slide <= window`,
      );
    }
    if (this.outOfOrdernessMs < 0 || this.maxAheadMs < 0) {
      throw new OperatorError("out-of-orderness and max-ahead cannot be negative");
    }
    this.paneMs = gcd(this.windowMs, this.slideMs);
    this.times = new EventTimes();
    this.fieldNames = [this.timeField, this.tickerField, this.priceField];
    this.quotedFields = this.fieldNames.map((f) => JSON.stringify(f));
    // Records in the producer's layout (`{"EVENT_TIME": "...", "TICKER": "...", "PRICE": ...}`,
    // with or without the spaces) are read in place by one sticky regular expression that
    // accepts only text JSON.parse reads the same; anything else (another order, escapes,
    // other fields, a value out of the ordinary) takes JSON.parse, which says what is wrong.
    this.layout = layout(this.timeField, this.tickerField, this.priceField);
    /** Epoch ms of each `YYYY-MM-DDTHH:MM` seen (consecutive trades share a few). */
    this.minutes = new Map();
    this.keys = new Map();
    this.timers = new Timers();
    this.maxEventTime = NEVER;
    this.watermark = NEVER;
  }

  grouping() {
    return JsonField(this.tickerField);
  }

  firstEndContaining(pane, after) {
    const w = this.windowMs;
    const s = this.slideMs;
    const first = floorDiv(pane - w, s) * s + s + w;
    return after === NEVER ? first : Math.max(first, floorDiv(after - w, s) * s + s + w);
  }

  /** [event time or undefined, ticker, price] of a record; OperatorError says what is wrong. */
  trade(data) {
    const field = (name) => JSON.stringify(name);
    let trade;
    try {
      const text = decoder.decode(data);
      trade = JSON.parse(text);
      // JSON.parse keeps the last of a field named twice; the Rust operator refuses such a
      // record (the host routes it by the first). A name seen twice in the text is checked.
      for (const name of this.quotedFields) {
        const first = text.indexOf(name);
        if (first >= 0 && text.indexOf(name, first + 1) >= 0) duplicateCheck(text, this.fieldNames);
      }
    } catch (error) {
      if (error instanceof OperatorError) throw error;
      throw new OperatorError(`expected a JSON object with a trade (${error.message})`);
    }
    if (trade === null || typeof trade !== "object" || Array.isArray(trade)) {
      throw new OperatorError("invalid type: expected a JSON object with a trade");
    }
    const ticker = trade[this.tickerField];
    if (ticker === undefined || ticker === null) throw new OperatorError(`missing field ${field(this.tickerField)}`);
    if (typeof ticker !== "string") throw new OperatorError(`field ${field(this.tickerField)}: expected the ticker as a string`);
    if (ticker === "") throw new OperatorError(`field ${field(this.tickerField)} is empty`);
    const price = trade[this.priceField];
    if (price === undefined || price === null) throw new OperatorError(`missing field ${field(this.priceField)}`);
    if (typeof price !== "number") throw new OperatorError(`field ${field(this.priceField)}: expected the price as a number`);
    if (!Number.isFinite(price)) throw new OperatorError(`field ${field(this.priceField)}: number out of range`);
    let time = trade[this.timeField];
    if (time === null) time = undefined;
    if (typeof time === "string") {
      try {
        time = this.times.parse(time);
      } catch (error) {
        throw new OperatorError(`field ${field(this.timeField)}: ${error.message}`);
      }
    } else if (typeof time === "number") {
      if (!Number.isFinite(time) || Math.abs(time) >= 9.0e15) throw new OperatorError(`field ${field(this.timeField)}: ${time} is out of range`);
      time = Math.floor(time);
    } else if (time !== undefined) {
      throw new OperatorError(`field ${field(this.timeField)}: expected an ISO-8601 date-time string or epoch milliseconds`);
    }
    return [time, ticker, price];
  }

  lateness(time, closed) {
    const w = this.windowMs;
    const s = this.slideMs;
    const firstEnd = floorDiv(time - w, s) * s + s + w;
    const lastEnd = floorDiv(time, s) * s + w;
    if (lastEnd <= closed) {
      throw new Late(
        `event time ${timestamp(time)} is ${closed - time} ms behind the watermark ${timestamp(closed)}, and every window it belongs to has been emitted (raise out-of-orderness, now ${this.outOfOrdernessMs} ms, to wait longer)`,
      );
    }
    if (firstEnd > closed) return undefined;
    const missedLast = floorDiv(closed - w, s) * s + w;
    const missed = (missedLast - firstEnd) / s + 1;
    return `event time ${timestamp(time)} came after ${missed} of its ${(lastEnd - firstEnd) / s + 1} windows were emitted without it, [${timestamp(firstEnd - w)}, ${timestamp(firstEnd)}) to [${timestamp(missedLast - w)}, ${timestamp(missedLast)}); it counts in the others (raise out-of-orderness, now ${this.outOfOrdernessMs} ms, to wait longer)`;
  }

  add(ticker, time, price) {
    let key = this.keys.get(ticker);
    const closed = Math.max(key ? key.lastFiredEnd : NEVER, this.watermark);
    const partly = time < closed ? this.lateness(time, closed) : undefined;
    const pane = floorDiv(time, this.paneMs) * this.paneMs;
    const candidate = this.firstEndContaining(pane, closed);
    if (key === undefined) {
      key = new Key(ticker);
      this.keys.set(ticker, key);
    }
    if (key.count(pane, price, candidate)) this.timers.push([candidate, ticker]);
    return partly;
  }

  advanceWatermark(to, out) {
    if (to > this.watermark) this.watermark = to;
    this.fireUntil(this.watermark, out);
  }

  fireUntil(limit, out) {
    const w = this.windowMs;
    const s = this.slideMs;
    // The window's times as written in a result, for the windows ending at `windowEnd`: keys
    // fire in order of their windows' ends, so most results share the previous one's.
    let windowEnd = NEVER;
    let windowTimes = "";
    while (this.timers.length > 0 && this.timers.peek()[0] <= limit) {
      const due = this.timers.pop();
      const end = due[0];
      const ticker = due[1];
      const key = this.keys.get(ticker);
      if (key.timer !== end) continue;
      const start = end - w;
      let top = -Infinity;
      let count = 0;
      let next = END;
      for (const entry of key.panes) {
        const pane = entry[0];
        const slot = entry[1];
        if (pane < start) {
          key.panes.delete(pane);
          continue;
        }
        if (pane < end) {
          if (slot[0] > top) top = slot[0];
          count += slot[1];
        }
        if (pane >= end + s - w && pane < next) next = pane;
      }
      key.lastFiredEnd = end;
      if (count > 0) {
        if (end !== windowEnd) {
          windowEnd = end;
          windowTimes = `,"WINDOW_START":"${timestamp(start)}","WINDOW_END":"${timestamp(end)}"`;
        }
        out.emit(ticker, `{"TICKER":${key.quoted}${windowTimes},"MAX_PRICE":${number(top)},"TRADES":${count}}`);
      }
      if (next !== END) {
        key.timer = Math.max(floorDiv(next - w, s) * s + s + w, end + s);
        this.timers.push([key.timer, ticker]);
      } else {
        key.timer = END;
      }
    }
  }

  process(batch, out) {
    if (this.processing) this.fireUntil(this.watermark, out);
    else this.advanceWatermark(batch.watermarkMs - this.outOfOrdernessMs, out);
    const now = Math.max(batch.nowMs, this.watermark);
    const text = this.processing ? undefined : batch.ascii();
    if (text === undefined) {
      for (const record of batch.records()) this.record(batch, out, record.index, record.data, now);
      if (this.processing) this.advanceWatermark(now, out);
      return;
    }
    // The layout's path: what `record` and `add` do for a trade in the producer's layout, of
    // a known ticker, neither late nor too far ahead (any other takes `record`).
    const { bytes, keyLens, dataLens } = batch;
    const { layout, minutes, keys, timers, watermark, windowMs: w, slideMs: s, paneMs } = this;
    const ahead = batch.nowMs > 0 ? batch.nowMs + this.maxAheadMs : END;
    let latest = NEVER;
    let at = 0;
    for (let index = 0; index < keyLens.length; index++) {
      const start = at + keyLens[index];
      const end = start + dataLens[index];
      at = end;
      layout.lastIndex = start;
      const m = layout.exec(text);
      if (m !== null && layout.lastIndex === end) {
        let base = minutes.get(m[1]);
        if (base === undefined) base = this.minute(m[1]);
        const key = keys.get(m[4]);
        if (base !== undefined && key !== undefined) {
          const time = base + +m[2] * 1000 + +m[3];
          const closed = key.lastFiredEnd > watermark ? key.lastFiredEnd : watermark;
          if (closed <= time && time <= ahead) {
            // `floorDiv` inlined, and `+` for `Number`: here a call costs more than the
            // arithmetic (5-7% of the operator's time, measured in the component).
            const pane = time - (((time % paneMs) + paneMs) % paneMs);
            // `firstEndContaining(pane, closed)`: with the trade at or after `closed`, so is
            // the first window that holds its pane.
            const candidate = pane - w - ((((pane - w) % s) + s) % s) + s + w;
            if (key.count(pane, +m[5], candidate)) timers.push([candidate, m[4]]);
            if (time > latest) latest = time;
            continue;
          }
        }
      }
      this.record(batch, out, index, bytes.subarray(start, end), now);
    }
    if (latest !== NEVER) {
      out.observeEventTime(latest);
      if (latest > this.maxEventTime) this.maxEventTime = latest;
    }
  }

  /** Epoch ms of `YYYY-MM-DDTHH:MM` (undefined if it is no time: JSON.parse's path says why). */
  minute(text) {
    let base;
    try {
      base = parseTime(`${text}:00.000`);
    } catch {
      return undefined;
    }
    if (this.minutes.size >= 4096) this.minutes.clear();
    this.minutes.set(text, base);
    return base;
  }

  /** One record by JSON.parse: added, or refused with the reason. */
  record(batch, out, index, data, now) {
    let time, ticker, price;
    try {
      [time, ticker, price] = this.trade(data);
    } catch (error) {
      if (!(error instanceof OperatorError)) throw error;
      out.reject(index, error.message);
      return;
    }
    if (this.processing) time = now;
    else if (time === undefined) {
      out.reject(index, `missing field ${JSON.stringify(this.timeField)}`);
      return;
    }
    if (Number.isNaN(price) || price < 0) {
      out.reject(index, `field ${JSON.stringify(this.priceField)}: ${number(price)} is not a price (a number, 0 or more)`);
      return;
    }
    if (!this.processing && batch.nowMs > 0 && time > batch.nowMs + this.maxAheadMs) {
      out.reject(
        index,
        `event time ${timestamp(time)} is ahead of processing time ${timestamp(batch.nowMs)} by more than max-ahead (${this.maxAheadMs} ms): a clock or data error`,
      );
      return;
    }
    let partly;
    try {
      partly = this.add(ticker, time, price);
    } catch (error) {
      if (!(error instanceof Late)) throw error;
      out.rejectLate(index, error.message);
      return;
    }
    if (partly !== undefined) out.reportPartlyLate(index, partly);
    if (!this.processing) {
      out.observeEventTime(time);
      if (time > this.maxEventTime) this.maxEventTime = time;
    }
  }

  tick(nowMs, watermarkMs, out) {
    this.advanceWatermark(this.processing ? nowMs : watermarkMs - this.outOfOrdernessMs, out);
  }

  finish(nowMs, out) {
    this.fireUntil(END, out);
  }

  snapshot(out) {
    out.push(INSTANCE_KEY, codec.encode(FORMAT, [this.maxEventTime, this.watermark]));
    for (const entry of this.keys) {
      const key = entry[1];
      if (key.panes.size === 0) continue;
      const closedThrough = Math.max(key.lastFiredEnd, this.watermark);
      const panes = [];
      for (const pane of key.panes) panes.push([pane[0], pane[1][0], pane[1][1]]);
      panes.sort((a, b) => a[0] - b[0]);
      out.push(entry[0], codec.encode(FORMAT, [closedThrough, panes]));
    }
  }

  restore(state) {
    for (const [ticker, data] of state) {
      if (ticker === INSTANCE_KEY) {
        const [maxEventTime, watermark] = codec.decode(FORMAT, data);
        this.maxEventTime = Math.max(this.maxEventTime, maxEventTime);
        this.watermark = Math.max(this.watermark, watermark);
        continue;
      }
      let closedThrough, panes;
      try {
        [closedThrough, panes] = codec.decode(FORMAT, data);
      } catch (error) {
        throw new OperatorError(`state of key ${JSON.stringify(ticker)}: ${error.message}`);
      }
      let key = this.keys.get(ticker);
      if (key === undefined) {
        key = new Key(ticker);
        this.keys.set(ticker, key);
      }
      if (key.panes.size > 0) throw new OperatorError(`state of key ${JSON.stringify(ticker)} was given twice`);
      for (const pane of panes) key.panes.set(pane[0], [pane[1], pane[2]]);
      key.lastFiredEnd = closedThrough;
    }
    for (const [ticker, key] of this.keys) {
      if (key.panes.size === 0) continue;
      key.timer = this.firstEndContaining(Math.min(...key.panes.keys()), key.lastFiredEnd);
      this.timers.push([key.timer, ticker]);
    }
  }
}

/** A trade written as the producer writes it: the three fields in this order, the time with
 * milliseconds and no offset, a ticker of printable ASCII without escapes, a price without a
 * sign or exponent. Groups: the time's minute, seconds, milliseconds, the ticker, the price. */
function layout(timeField, tickerField, priceField) {
  const name = (field) => JSON.stringify(field).replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(
    `\\{${name(timeField)}: ?"(\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d):([0-5]\\d)\\.(\\d{3})", ?` +
      `${name(tickerField)}: ?"([\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]{1,64})", ?` +
      `${name(priceField)}: ?((?:0|[1-9]\\d{0,15})(?:\\.\\d{1,17})?)\\}`,
    "y",
  );
}

/** A price as JSON, as Rust's serde_json writes an f64 (a whole number with `.0`), for prices
 * from 1e-6 up to 1e16; beyond, JavaScript's exponent form differs from serde_json's. */
function number(value) {
  if (Number.isInteger(value) && Math.abs(value) < 1e16) return `${value}.0`;
  return String(value).replace("e+", "e");
}

export const operator = exportOperator(SlidingWindowMax);
