// A native test driver for operators: the host's call sequence without WebAssembly, for
// node's test runner. The same calls as the Rust and Python SDKs' Harness.

import { LATE, NO_WATERMARK, PARTLY_LATE, Batch, KeyedStates, Output } from "./records.js";
import { Settings } from "./settings.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytesOf = (data) => (typeof data === "string" ? encoder.encode(data) : Uint8Array.from(data));

/** A record the operator refused, with its reason. */
export class DeadLetter {
  constructor(partitionKey, data, reason) {
    this.partitionKey = partitionKey;
    this.data = data;
    this.reason = reason;
  }

  /** "all" for a record refused as late, "some" for one reported partly late, else undefined. */
  get late() {
    if (this.reason.startsWith(LATE)) return "all";
    if (this.reason.startsWith(PARTLY_LATE)) return "some";
    return undefined;
  }
}

/**
 * Drives one operator instance the way the host does: records are gathered into a batch,
 * processed when it is full, when time advances, or when the input ends. The harness is a
 * host reading one shard: the watermark is the latest event time the operator reported,
 * passed back at once with a `tick`. Processing time starts at 0 and moves only with
 * `setTime` or `advanceTime`.
 */
export class Harness {
  constructor(operatorClass, settings = [], { batchSize = 1024, shardId = "shard-0" } = {}) {
    this.operatorClass = operatorClass;
    this.settings = new Settings(settings);
    this.operator = new operatorClass(this.settings);
    this.batchSize = Math.max(1, batchSize);
    this.shardId = shardId;
    this.pending = [];
    this.nowMs = 0;
    this.watermarkMs = NO_WATERMARK;
    this.output = new Output();
    this.deadLetters = [];
  }

  /** Add a record (arriving now unless given a time); a full batch is processed at once. */
  push(partitionKey, data, arrivalTimeMs = this.nowMs) {
    this.pending.push([partitionKey, bytesOf(data), arrivalTimeMs]);
    if (this.pending.length >= this.batchSize) this.flush();
    return this;
  }

  /** The pending records as the host would pack them. */
  batch() {
    const keys = this.pending.map(([key]) => encoder.encode(key));
    const size = this.pending.reduce((n, [, data], i) => n + keys[i].length + data.length, 0);
    const bytes = new Uint8Array(size);
    let at = 0;
    this.pending.forEach(([, data], i) => {
      bytes.set(keys[i], at);
      bytes.set(data, at + keys[i].length);
      at += keys[i].length + data.length;
    });
    return new Batch(
      this.shardId,
      this.nowMs,
      this.watermarkMs,
      bytes,
      Uint32Array.from(keys, (k) => k.length),
      Uint32Array.from(this.pending, ([, data]) => data.length),
      BigInt64Array.from(this.pending, ([, , arrival]) => BigInt(arrival)),
    );
  }

  /** Process the pending records now, as one batch. */
  flush() {
    if (this.pending.length === 0) return;
    const out = new Output();
    this.operator.process(this.batch(), out);
    for (const [index, reason] of out.rejected) {
      const [key, data] = this.pending[index];
      this.deadLetters.push(new DeadLetter(key, data, reason));
    }
    out.rejected = [];
    this.pending = [];
    this.output.extend(out);
    if (out.eventTimeMs !== undefined && out.eventTimeMs > this.watermarkMs) {
      this.watermarkMs = out.eventTimeMs;
      this.tickOperator();
    }
  }

  tickOperator() {
    const out = new Output();
    this.operator.tick(this.nowMs, this.watermarkMs, out);
    this.output.extend(out);
  }

  /** Set processing time without telling the operator; later records carry it. */
  setTime(nowMs) {
    this.flush();
    this.nowMs = nowMs;
    return this;
  }

  /** Process pending records, move processing time to `nowMs` and tick the operator. */
  advanceTime(nowMs) {
    this.flush();
    this.nowMs = nowMs;
    this.tickOperator();
  }

  /** Process pending records and end the input. */
  endInput() {
    this.flush();
    const out = new Output();
    this.operator.finish(this.nowMs, out);
    this.output.extend(out);
  }

  /** Everything emitted so far, as `[key, data]` strings. */
  outputStrings() {
    return this.output.records().map(([key, data]) => [key, decoder.decode(data)]);
  }

  /** Remove and return everything emitted so far. */
  takeOutput() {
    const taken = this.output;
    this.output = new Output();
    return taken;
  }

  /** The operator's keyed snapshot (pending records processed first), sorted by key. */
  snapshot() {
    this.flush();
    const state = new KeyedStates();
    this.operator.snapshot(state);
    return state.sorted();
  }

  /** Replace the operator with a fresh instance of the same settings restored from `state`, as
   * the host does on a swap or a restart. Output so far and the watermark are kept. */
  restartFrom(state) {
    this.flush();
    const operator = new this.operatorClass(this.settings);
    operator.restore(state);
    this.operator = operator;
  }
}
