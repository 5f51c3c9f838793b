// sliding-window-max in JavaScript on hand-made streams: the cases of the Rust operator's
// tests/windows.rs, natively through the SDK's harness.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Harness, KeyedStates } from "weir-operator";
import { SlidingWindowMax, durationMs, parseTime } from "../app.js";

const T0 = 1_795_600_800_000; // 2026-11-25T10:00:00Z
const trade = (ticker, timeMs, price) => JSON.stringify({ EVENT_TIME: timeMs, TICKER: ticker, PRICE: price });
const harness = (settings = {}) => new Harness(SlidingWindowMax, settings, { batchSize: 1 });
const results = (h) =>
  h.outputStrings().map(([key, data]) => {
    const v = JSON.parse(data);
    assert.equal(key, v.TICKER);
    assert.match(v.WINDOW_START, /Z$/);
    return [v.TICKER, Date.parse(v.WINDOW_START), Date.parse(v.WINDOW_END), v.MAX_PRICE, v.TRADES];
  });
const w = (ticker, startS, endS, top, trades) => [ticker, T0 + startS * 1000, T0 + endS * 1000, top, trades];

test("output is exactly the documented JSON", () => {
  const h = harness();
  h.push("AMZN", '{"EVENT_TIME": "2026-11-25T10:00:05.5", "TICKER": "AMZN", "PRICE": 42.17}');
  h.push("AMZN", '{"EVENT_TIME": "2026-11-25T10:00:06", "TICKER": "AMZN", "PRICE": 40}');
  h.endInput();
  assert.deepEqual(h.outputStrings()[0], [
    "AMZN",
    '{"TICKER":"AMZN","WINDOW_START":"2026-11-25T09:59:10.000Z","WINDOW_END":"2026-11-25T10:00:10.000Z","MAX_PRICE":42.17,"TRADES":2}',
  ]);
});

test("a trade belongs to every window that contains it and boundaries are half open", () => {
  let h = harness({ window: "60s", slide: "10s", "out-of-orderness": "0s" });
  h.push("A", trade("A", T0, 5.0));
  h.endInput();
  assert.deepEqual(results(h).map((r) => (r[1] - T0) / 1000), [-50, -40, -30, -20, -10, 0]);
  h = harness({ window: "10s", slide: "10s", "out-of-orderness": "0s" });
  h.push("A", trade("A", T0 + 9_999, 1.0)).push("A", trade("A", T0 + 10_000, 2.0));
  h.endInput();
  assert.deepEqual(results(h), [w("A", 0, 10, 1, 1), w("A", 10, 20, 2, 1)]);
});

test("windows fire when the watermark passes their end, not before", () => {
  const h = harness({ window: "10s", slide: "5s", "out-of-orderness": "1s" });
  h.push("A", trade("A", T0 + 1_000, 3.0)).push("A", trade("A", T0 + 9_999, 4.0));
  assert.deepEqual(results(h), [w("A", -5, 5, 3, 1)]);
  h.push("A", trade("A", T0 + 11_000, 1.0));
  assert.deepEqual(results(h), [w("A", -5, 5, 3, 1), w("A", 0, 10, 4, 2)]);
});

test("late trades go to dead letters with the reason, partly late ones count where they can", () => {
  const h = harness({ window: "20s", slide: "10s", "out-of-orderness": "0s" });
  h.push("A", trade("A", T0 + 1_000, 1.0)).push("A", trade("A", T0 + 25_000, 1.0));
  h.push("A", trade("A", T0 + 5_000, 50.0)).push("A", trade("A", T0 + 15_000, 7.0));
  h.endInput();
  assert.deepEqual(results(h), [w("A", -10, 10, 1, 1), w("A", 0, 20, 1, 1), w("A", 10, 30, 7, 2), w("A", 20, 40, 1, 1)]);
  const [late, partly] = h.deadLetters;
  assert.equal(late.late, "all");
  assert.ok(late.reason.startsWith("late: event time 2026-11-25T10:00:05.000Z is 20000 ms behind"), late.reason);
  assert.equal(partly.late, "some");
  assert.ok(
    partly.reason.startsWith(
      "partly late: event time 2026-11-25T10:00:15.000Z came after 1 of its 2 windows were emitted without it, [2026-11-25T10:00:00.000Z, 2026-11-25T10:00:20.000Z)",
    ),
    partly.reason,
  );
});

test("bad records are refused with the reason and the rest still count", () => {
  const h = harness({ window: "10s", slide: "10s", "max-ahead": "1h" });
  h.setTime(T0);
  const bad = [
    ["{not json", "expected a JSON object"],
    ['{"TICKER": "A", "PRICE": 1}', 'missing field "EVENT_TIME"'],
    [trade("A", T0, -1.0), "-1.0 is not a price"],
    [trade("A", T0 + 3_600_001, 5.0), "ahead of processing time"],
    ['{"EVENT_TIME": 1795600800000, "TICKER": "A", "PRICE": 1e999}', "out of range"],
    ['{"EVENT_TIME": "yesterday", "TICKER": "A", "PRICE": 1}', '"yesterday" is not an ISO-8601'],
    ['{"EVENT_TIME": 1, "TICKER": "A", "PRICE": "12"}', "as a number"],
    ['{"EVENT_TIME": 1, "TICKER": "", "PRICE": 1}', "is empty"],
    ["[1, 2]", "a JSON object"],
    ['{"TICKER": "A", "PRICE": 1, "X": {"TICKER": "B"}, "TICKER": "C"}', 'duplicate field "TICKER"'],
  ];
  for (const [record] of bad) h.push("A", record);
  h.push("A", trade("A", T0 + 1_000, 2.0));
  h.endInput();
  assert.deepEqual(results(h), [w("A", 0, 10, 2, 1)]);
  assert.equal(h.deadLetters.length, bad.length);
  bad.forEach(([, part], i) => assert.ok(h.deadLetters[i].reason.includes(part), `${part} not in ${h.deadLetters[i].reason}`));
});

test("a field named twice only inside a nested object or a string is no duplicate", () => {
  const h = harness({ window: "10s", slide: "10s" });
  h.push("A", `{"EVENT_TIME": ${T0}, "TICKER": "A", "PRICE": 1, "X": {"TICKER": "B"}, "Y": "\\"TICKER\\""}`);
  h.endInput();
  assert.deepEqual(results(h), [w("A", 0, 10, 1, 1)]);
  assert.deepEqual(h.deadLetters, []);
});

test("processing-time windows fire on ticks without input", () => {
  const h = harness({ time: "processing", window: "10s", slide: "10s" });
  h.setTime(T0 + 1_000);
  h.push("A", '{"TICKER": "A", "PRICE": 4}').push("A", trade("A", 0, 6.0));
  h.advanceTime(T0 + 9_999);
  assert.deepEqual(results(h), []);
  h.advanceTime(T0 + 10_000);
  assert.deepEqual(results(h), [w("A", 0, 10, 6, 2)]);
});

test("snapshot and restore mid-window give the same results", () => {
  const stream = Array.from({ length: 200 }, (_, i) => ["ABC"[i % 3], T0 + i * 173, i % 17]);
  const settings = { window: "10s", slide: "2s", "out-of-orderness": "300ms" };
  const straight = harness(settings);
  for (const [t, ms, p] of stream) straight.push(t, trade(t, ms, p));
  straight.endInput();
  const restarted = new Harness(SlidingWindowMax, settings, { batchSize: 7 });
  stream.forEach(([t, ms, p], i) => {
    restarted.push(t, trade(t, ms, p));
    if (i === 97) {
      const state = restarted.snapshot();
      assert.ok([...state].some(([key]) => key === ""));
      restarted.restartFrom(state);
    }
  });
  restarted.endInput();
  assert.deepEqual(results(restarted), results(straight));
});

test("settings and event times parse as the Rust operator's do", () => {
  assert.throws(() => harness({ colour: "red" }), /unknown setting "colour"/);
  assert.throws(() => harness({ window: "10s", slide: "1m" }), /slide .* is longer than window/);
  assert.throws(() => harness({ window: "soon" }), /setting window="soon"/);
  assert.equal(durationMs("1m 30s"), 90_000);
  assert.equal(parseTime("2026-11-25T10:00:00.123456789"), T0 + 123);
  assert.equal(parseTime("2026-11-25T11:00:00.5+01:00"), T0 + 500);
  assert.equal(parseTime("2026-11-25 10:00:00.250Z"), T0 + 250);
  assert.throws(() => parseTime("2026-02-30T00:00:00"), /not an ISO-8601/);
});

test("damaged state is refused naming the key", () => {
  const h = harness();
  h.push("A", trade("A", T0, 1.0));
  const broken = new KeyedStates();
  for (const [key, data] of h.snapshot()) broken.push(key, key === "" ? data : Uint8Array.of(2, ...data.subarray(1)));
  assert.throws(() => h.restartFrom(broken), /state of key "A": state format 2 is not known/);
});

test("the same-minute shortcut agrees with the full parse", async () => {
  const { EventTimes } = await import("../app.js");
  const times = new EventTimes();
  for (const minute of ["2026-11-25T10:00", "2026-11-25T10:01", "1999-12-31T23:59", "2026-11-25 10:01"]) {
    for (const rest of [":00.000", ":07.500", ":59.999", ":30.1Z", ":30.123+01:00", ":05.12x", ":5.1234", ":05.123", ":60.000"]) {
      const text = minute + rest;
      let want;
      try {
        want = parseTime(text);
      } catch {
        assert.throws(() => times.parse(text));
        continue;
      }
      assert.equal(times.parse(text), want, text);
    }
  }
  assert.ok(times.prefix, "the shortcut was taken");
});

test("trades in the producer's layout give what JSON.parse gives", () => {
  // The layout's path (one sticky regular expression over the batch, in place) against
  // JSON.parse's: the same trades, once as the producer writes them and once with the fields
  // in another order (which the layout does not read), give the same results and refusals.
  let seed = 26;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const pick = (list) => list[Math.floor(random() * list.length)];
  const stamp = (ms) => new Date(ms).toISOString().slice(0, 23);
  const values = [];
  for (let i = 0; i < 5000; i++) {
    // Times on and just before pane boundaries, now and then out of order.
    const time = T0 + Math.floor(i / 4) * 250 - pick([0, 0, 1]) - (random() < 0.05 ? 3000 : 0);
    // A batch with a byte outside ASCII is read by JSON.parse whole: "Ω" only now and then.
    let ticker = random() < 0.002 ? "Ω" : pick(["T000A", "T000B", "T000C", "AMZN", "ZZ.Z", "T000D", "A B"]);
    // A ticker silent for longer than a window between its bursts: every window of it fires,
    // and its next trade sets its timer afresh.
    if (Math.floor(i / 1200) % 2 === 0 && random() < 0.2) ticker = "GAP";
    const price = pick(Array(10).fill(null).flatMap(() => [(random() * 500).toFixed(2), "0", "17"]).concat(["-1.5", "1e3", "01"]));
    const when = pick(Array(40).fill(stamp(time)).concat(["2026-13-25T10:00:00.000", "2026-11-25T10:00:61.000", stamp(time + 1e11)]));
    values.push([when, ticker, price]);
  }
  const run = (records) => {
    const h = new Harness(SlidingWindowMax, {}, { batchSize: 64 });
    h.setTime(T0 + 60_000);
    for (const [ticker, record] of records) h.push(ticker, record);
    h.endInput();
    // Where JSON.parse stops in a malformed record depends on the field order.
    return [h.outputStrings(), h.deadLetters.map((d) => d.reason.replace(/ (at )?position \d+.*$/, "")), h.operator];
  };
  const layout = values.map(([t, k, p]) => [k, `{"EVENT_TIME": "${t}", "TICKER": "${k}", "PRICE": ${p}}`]);
  const shuffled = values.map(([t, k, p]) => [k, `{"TICKER": "${k}", "PRICE": ${p}, "EVENT_TIME": "${t}"}`]);
  const [outA, deadA, readA] = run(layout);
  const [outB, deadB, readB] = run(shuffled);
  assert.ok(readA.minutes.size > 0 && readB.minutes.size === 0, "the layout's path read the first run only");
  assert.deepEqual(outA, outB);
  assert.deepEqual(deadA, deadB);
  assert.ok(outA.length > 100 && deadA.length > 100, `${outA.length} results, ${deadA.length} refused`);
});
