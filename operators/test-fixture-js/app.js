// An operator in JavaScript that misbehaves on request: the weir host's fixture for
// JavaScript exceptions, CPU and memory limits, and state carried across a swap.
//
// Otherwise it echoes every record (same key, same data) and counts records per partition key.
// Settings, each naming a text that triggers it when a record's data contains it:
//
// - `raise-on`: throw a TypeError while processing that record;
// - `reject-on`: refuse that record;
// - `spin-on`: loop forever on it (for the CPU limit);
// - `alloc-on`: allocate without bound on it (for the memory limit);
// - `tag=TEXT`: add TEXT to every echoed record (to tell two versions apart);
// - `emit-counts=true`: at the end of the input, emit each key's count.

import { Operator, OperatorError, codec, exportOperator } from "weir-operator";

const decoder = new TextDecoder();

export class Fixture extends Operator {
  static operatorName = "test-fixture-js";
  static version = "0.2.0";

  constructor(settings) {
    super(settings);
    settings.checkKnown(["raise-on", "reject-on", "spin-on", "alloc-on", "tag", "emit-counts"]);
    this.triggers = new Map(
      ["raise-on", "reject-on", "spin-on", "alloc-on"].filter((n) => settings.get(n)).map((n) => [n, settings.get(n)]),
    );
    this.tag = settings.get("tag") ?? "";
    this.emitCounts = settings.get("emit-counts") === "true";
    this.counts = new Map();
  }

  on(name, text) {
    const trigger = this.triggers.get(name);
    return trigger !== undefined && text.includes(trigger);
  }

  process(batch, out) {
    for (const record of batch.records()) {
      const text = decoder.decode(record.data);
      if (this.on("raise-on", text)) null.boom();
      if (this.on("spin-on", text)) for (;;) {}
      if (this.on("alloc-on", text)) {
        const hoard = [];
        for (;;) hoard.push(new Uint8Array(1 << 20).fill(1));
      }
      if (this.on("reject-on", text)) {
        out.reject(record.index, `refused: the data contains ${JSON.stringify(this.triggers.get("reject-on"))}`);
        continue;
      }
      this.counts.set(record.partitionKey, (this.counts.get(record.partitionKey) ?? 0) + 1);
      out.emit(record.partitionKey, text + this.tag);
    }
  }

  finish(nowMs, out) {
    if (!this.emitCounts) return;
    for (const key of [...this.counts.keys()].sort()) out.emit(key, `${key}=${this.counts.get(key)}`);
  }

  snapshot(out) {
    for (const [key, count] of this.counts) out.push(key, codec.encode(1, count));
  }

  restore(state) {
    for (const [key, data] of state) {
      const count = codec.decode(1, data);
      if (!Number.isInteger(count)) throw new OperatorError(`state of key ${JSON.stringify(key)} is not a count`);
      this.counts.set(key, (this.counts.get(key) ?? 0) + count);
    }
  }
}

export const operator = exportOperator(Fixture);
