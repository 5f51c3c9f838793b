// What an operator is: a class with the contract's calls (Operator), the key its state
// belongs to (PartitionKey, JsonField), and mapRecords, which makes one function into a
// stateless operator.

import { oneLine } from "./errors.js";

/** Route records by their partition key (stateless operators, and state per partition key). */
export const PartitionKey = Object.freeze({ kind: "partition-key" });

/** Route records by the value of this top-level field of their JSON object. */
export function JsonField(name) {
  return Object.freeze({ kind: "json-field", name });
}

/**
 * A stream operator: keyed state, fed batches of records, producing output records.
 *
 * Calls come in this order: the constructor (with the Settings), then maybe `restore`, then
 * any number of `process` and `tick`, then `finish` if the input ends; `snapshot` may be
 * called between any two. An operator must be deterministic: no clock, no randomness; time
 * comes from the host (`batch.nowMs`, `batch.watermarkMs`, `tick`, arrival times).
 *
 * State belongs to the `grouping()` key: the host sends every record of one key to the same
 * instance and moves state only through `snapshot` and `restore`, one entry per key.
 *
 * Throw OperatorError for what the operator refuses; any exception from `process` fails the
 * batch, and the host then restores the state from before it and dead-letters the records
 * that fail, with `Name: message` of the exception as the reason.
 */
export class Operator {
  /** The operator's name, as `weir check` and the logs show it. */
  static operatorName = "operator";
  /** The operator's own version (not the contract's). */
  static version = "0.0.0";

  /** Build an instance from its Settings. Refuse unknown keys and bad values
   * (`settings.checkKnown([...])`, `settings.parseOr(...)`): the host refuses the operator
   * before anything runs, with that message. */
  constructor(settings) {}

  /** The key this operator's state and results belong to. */
  grouping() {
    return PartitionKey;
  }

  /** Process a batch of one shard's records. */
  process(batch, out) {
    throw new Error(`${this.constructor.name} does not define process(batch, out)`);
  }

  /** Processing time has advanced to `nowMs` without new input; the watermark is `watermarkMs`. */
  tick(nowMs, watermarkMs, out) {}

  /** The input has ended: emit whatever is pending. */
  finish(nowMs, out) {}

  /** Append the whole state, one entry per grouping key. Stateless operators append nothing. */
  snapshot(out) {}

  /** Load entries `snapshot` produced. Stateless operators ignore them. */
  restore(state) {}
}

/**
 * Make `fn(record, out)` a stateless operator that calls it on every record: it emits zero or
 * more records per input (a map, a filter, a flat map). A record it throws on is refused with
 * the error's message (it goes to the dead-letter destination) and the batch goes on.
 */
export function mapRecords(fn, { name = fn.name, version = "0.1.0" } = {}) {
  const mapped = class extends Operator {
    static operatorName = name;
    static version = version;

    constructor(settings) {
      super(settings);
      settings.checkKnown([]);
    }

    process(batch, out) {
      for (const record of batch.records()) {
        try {
          fn(record, out);
        } catch (error) {
          out.reject(record.index, oneLine(error));
        }
      }
    }
  };
  Object.defineProperty(mapped, "name", { value: fn.name || "mapped" });
  return mapped;
}
