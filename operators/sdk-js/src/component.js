// The glue between an Operator class and the WebAssembly contract, for componentize-js.
//
// An operator's module ends with `export const operator = exportOperator(MyOperator)`:
// componentize-js binds the exported object named after the contract's interface
// (`operator`). Each call converts the contract's values to the SDK's once (64-bit integers
// arrive as BigInt and become Numbers: milliseconds since the epoch fit; componentize-js
// 0.23 hands an s64 argument over as if unsigned, so each is read back as signed), and an exception
// becomes the contract's error string (a thrown string is componentize-js's `err`; anything
// else would trap).

import { oneLine } from "./errors.js";
import { Batch, KeyedStates, Output } from "./records.js";
import { Settings } from "./settings.js";

/** The contract's `operator` interface, running `operatorClass`: one instance per component
 * instance (the host makes one per `--parallelism`). Plain JavaScript, so it also runs under
 * node. */
export function exportOperator(operatorClass) {
  let instance;

  /** An s64 argument as a Number. */
  const ms = (value) => Number(BigInt.asIntN(64, BigInt(value)));

  const running = () => {
    if (instance === undefined) throw new Error("the host called the operator before init");
    return instance;
  };

  const call = (work) => {
    try {
      return work();
    } catch (error) {
      throw oneLine(error);
    }
  };

  const output = (out) => ({
    bytes: out.bytes(),
    keyLens: out.keyLens,
    dataLens: out.dataLens,
    rejected: out.rejected.map(([index, reason]) => ({ index, reason })),
    eventTimeMs: out.eventTimeMs === undefined ? undefined : BigInt(Math.trunc(out.eventTimeMs)),
  });

  const produce = (work) => {
    const out = new Output();
    call(() => work(running(), out));
    return output(out);
  };

  return {
    describe: () => ({ name: operatorClass.operatorName, version: operatorClass.version }),
    init(settings) {
      call(() => {
        instance = new operatorClass(new Settings(settings));
      });
    },
    groupingKey() {
      const grouping = call(() => running().grouping());
      return grouping.kind === "json-field" ? { tag: "json-field", val: grouping.name } : { tag: "partition-key" };
    },
    process(b) {
      const batch = call(
        () => new Batch(b.shardId, ms(b.nowMs), ms(b.watermarkMs), b.bytes, b.keyLens, b.dataLens, b.arrivalTimesMs),
      );
      return produce((op, out) => op.process(batch, out));
    },
    tick: (nowMs, watermarkMs) => produce((op, out) => op.tick(ms(nowMs), ms(watermarkMs), out)),
    finish: (nowMs) => produce((op, out) => op.finish(ms(nowMs), out)),
    snapshot() {
      const states = new KeyedStates();
      call(() => running().snapshot(states));
      return { bytes: states.bytes(), keyLens: states.keyLens, stateLens: states.stateLens };
    },
    restore(state) {
      call(() => running().restore(new KeyedStates(state.bytes, state.keyLens, state.stateLens)));
    },
  };
}
