// The SDK natively: packing, the two operator styles through the harness, settings, codec,
// and the object componentize-js binds.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  Batch,
  Harness,
  INSTANCE_KEY,
  JsonField,
  KeyedStates,
  Operator,
  OperatorError,
  Output,
  Settings,
  codec,
  exportOperator,
  mapRecords,
} from "../src/index.js";

const text = new TextDecoder();
const bytes = (s) => new TextEncoder().encode(s);

const shout = mapRecords(
  (record, out) => {
    const data = text.decode(record.data);
    if (data.includes("AMZN")) out.emit(record.partitionKey, data.toUpperCase());
  },
  { name: "shout", version: "1.0.0" },
);

const priceOf = mapRecords((record, out) => {
  out.emit(record.partitionKey, String(JSON.parse(text.decode(record.data)).PRICE.toFixed(1)));
});

class Count extends Operator {
  static operatorName = "count";
  static version = "1.0.0";

  constructor(settings) {
    super(settings);
    settings.checkKnown(["field"]);
    this.field = settings.get("field") ?? "TICKER";
    this.counts = new Map();
  }

  grouping() {
    return JsonField(this.field);
  }

  process(batch, out) {
    for (const record of batch.records()) {
      this.counts.set(record.partitionKey, (this.counts.get(record.partitionKey) ?? 0) + 1);
    }
  }

  finish(nowMs, out) {
    for (const key of [...this.counts.keys()].sort()) out.emit(key, String(this.counts.get(key)));
  }

  snapshot(out) {
    for (const [key, n] of this.counts) out.push(key, codec.encode(1, n));
  }

  restore(state) {
    for (const [key, data] of state) this.counts.set(key, codec.decode(1, data));
  }
}

test("a batch unpacks its columns in order, data viewing the batch's bytes", () => {
  const packed = bytes("k1abck2de");
  const batch = new Batch("shard-7", 5, -1, packed, [2, 2], [3, 2], [10n, 11n]);
  const records = [...batch.records()];
  assert.equal(batch.length, 2);
  assert.deepEqual(
    records.map((r) => [r.index, r.partitionKey, text.decode(r.data), r.arrivalTimeMs]),
    [[0, "k1", "abc", 10], [1, "k2", "de", 11]],
  );
  assert.equal(records[0].data.buffer, packed.buffer, "no copy");
});

test("a batch is one string where every byte is ASCII, and none otherwise", () => {
  assert.equal(new Batch("s", 0, 0, bytes("k1abck2de"), [2, 2], [3, 2], [0n, 0n]).ascii(), "k1abck2de");
  assert.equal(new Batch("s", 0, 0, bytes("kΩ"), [1], [2], [0n]).ascii(), undefined, "a character of two bytes");
  assert.equal(new Batch("s", 0, 0, new Uint8Array([0x61, 0x80]), [0], [2], [0n]).ascii(), undefined, "not UTF-8");
});

test("an output's lengths grow past their first array and keep every value", () => {
  const out = new Output();
  for (let i = 0; i < 200; i++) out.emit("k".repeat(i % 3), "d".repeat(i));
  assert.equal(out.length, 200);
  assert.deepStrictEqual([...out.keyLens], Array.from({ length: 200 }, (_, i) => i % 3));
  assert.deepStrictEqual([...out.dataLens], Array.from({ length: 200 }, (_, i) => i));
  assert.deepEqual(out.records()[199], ["k", new TextEncoder().encode("d".repeat(199))]);
});

test("an output packs what is emitted, growing past its first buffer, and reads it back", () => {
  const out = new Output();
  out.emit("ä", new Uint8Array([0, 1]));
  out.emit("k", "x".repeat(5000));
  out.reject(3, "bad");
  out.observeEventTime(7);
  out.observeEventTime(5);
  // Typed arrays: componentize-js copies one into the guest's memory whole, a plain array
  // element by element.
  assert.deepStrictEqual(out.keyLens, Uint32Array.of(2, 1));
  assert.deepStrictEqual(out.dataLens, Uint32Array.of(2, 5000));
  const records = out.records();
  assert.deepEqual(records.map(([k, d]) => [k, d.length]), [["ä", 2], ["k", 5000]]);
  assert.deepEqual(out.rejected, [[3, "bad"]]);
  assert.equal(out.eventTimeMs, 7);
});

test("a map function keeps, filters and maps", () => {
  const h = new Harness(shout);
  h.push("k", "amzn? AMZN!").push("k", "GOOG");
  h.endInput();
  assert.deepEqual(h.outputStrings(), [["k", "AMZN? AMZN!"]]);
  assert.deepEqual([shout.operatorName, shout.version], ["shout", "1.0.0"]);
});

test("a record a map function throws on is dead-lettered with the error's name and message", () => {
  const h = new Harness(priceOf);
  h.push("a", '{"PRICE": 1.5}').push("b", '{"TICKER": "X"}').push("c", "not json");
  h.endInput();
  assert.deepEqual(h.outputStrings(), [["a", "1.5"]]);
  assert.equal(h.deadLetters[0].reason, "TypeError: Cannot read properties of undefined (reading 'toFixed')");
  assert.match(h.deadLetters[1].reason, /^SyntaxError: Unexpected token/);
});

test("a keyed operator carries its state through a restart", () => {
  const h = new Harness(Count, { field: "TICKER" }, { batchSize: 2 });
  h.push("AMZN", "{}").push("AMZN", "{}").push("GOOG", "{}");
  const state = h.snapshot();
  assert.deepEqual([...state].map(([k, v]) => [k, text.decode(v)]), [["AMZN", "\u00012"], ["GOOG", "\u00011"]]);
  h.restartFrom(state);
  h.push("GOOG", "{}");
  h.endInput();
  assert.deepEqual(h.outputStrings(), [["AMZN", "2"], ["GOOG", "2"]]);
  assert.deepEqual(h.operator.grouping(), JsonField("TICKER"));
});

test("unknown settings and bad values name the setting", () => {
  assert.throws(() => new Harness(Count, { colour: "red" }), /unknown setting "colour" \(accepted: field\)/);
  const settings = new Settings([["window", "ten"], ["window", "x"]]);
  const seconds = (v) => {
    if (!/^\d+$/.test(v)) throw new Error("not a number");
    return Number(v);
  };
  assert.throws(() => settings.parseOr("window", 60, seconds, "a number of seconds"), /setting window="x": expected a number of seconds/);
  assert.equal(new Settings().parseOr("window", 60, seconds, "seconds"), 60);
});

test("state round-trips, and what cannot be read is named", () => {
  const data = codec.encode(3, { max: 42.5, n: 7 });
  assert.equal(data[0], 3);
  assert.deepEqual(codec.decode(3, data), { max: 42.5, n: 7 });
  assert.throws(() => codec.decode(4, data), /state format 3 is not known to this version/);
  assert.throws(() => codec.decode(3, new Uint8Array()), /state is empty/);
  assert.throws(() => codec.decode(3, new Uint8Array([3, 0x92, 0x81])), /another language/);
  // The Python SDK's bytes for the same value.
  assert.deepEqual(codec.decode(1, bytes('\u0001[1795600800000,[[1795600800000,42.17,3]]]')), [
    1795600800000,
    [[1795600800000, 42.17, 3]],
  ]);
});

test("state refuses numbers JSON cannot hold, wherever they are, and keeps nulls", () => {
  for (const bad of [NaN, [1, Infinity], { panes: [[0, -Infinity]] }, [null, { n: NaN }]]) {
    assert.throws(() => codec.encode(1, bad), (e) => e instanceof OperatorError && /state cannot hold (NaN|-?Infinity)/.test(e.message));
  }
  assert.deepEqual(codec.decode(1, codec.encode(1, [null, { n: null }, "null"])), [null, { n: null }, "null"]);
});

test("keyed states keep instance-wide entries and sort by key", () => {
  const state = new KeyedStates();
  state.push("b", bytes("2"));
  state.push(INSTANCE_KEY, bytes("w"));
  state.push("a", bytes("1"));
  assert.deepEqual([...state.sorted()].map(([k, v]) => [k, text.decode(v)]), [["", "w"], ["a", "1"], ["b", "2"]]);
  const again = new KeyedStates(state.bytes(), state.keyLens, state.stateLens);
  assert.deepEqual([...again], [...state]);
});

test("the exported object speaks the contract's types: BigInt times, errors as strings", () => {
  const op = exportOperator(Count);
  assert.deepEqual(op.describe(), { name: "count", version: "1.0.0" });
  assert.throws(() => op.init([["colour", "red"]]), (e) => typeof e === "string" && e.includes("unknown setting"));
  op.init([["field", "TICKER"]]);
  assert.deepEqual(op.groupingKey(), { tag: "json-field", val: "TICKER" });
  // -2^63 as componentize-js 0.23 hands it over: as if unsigned.
  const out = op.process({
    shardId: "s", nowMs: 5n, watermarkMs: 2n ** 63n, bytes: bytes("A{}"),
    keyLens: Uint32Array.of(1), dataLens: Uint32Array.of(2), arrivalTimesMs: BigInt64Array.of(1n),
  });
  assert.deepEqual([out.keyLens, out.dataLens, out.rejected, out.eventTimeMs], [new Uint32Array(), new Uint32Array(), [], undefined]);
  const seen = [];
  const probe = exportOperator(class extends Operator {
    tick(nowMs, watermarkMs) {
      seen.push(nowMs, watermarkMs);
    }
  });
  probe.init([]);
  probe.tick(7n, 2n ** 63n);
  assert.deepEqual(seen, [7, Number(-(2n ** 63n))]);
  const end = op.finish(9n);
  assert.equal(text.decode(end.bytes), "A1");
  const state = op.snapshot();
  assert.deepStrictEqual([state.keyLens, state.stateLens], [Uint32Array.of(1), Uint32Array.of(2)]);
});
