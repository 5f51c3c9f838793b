// An operator's `key=value` settings, as `weir run --set` gives them.

import { OperatorError } from "./errors.js";

/** The settings of one instance. A key given twice takes its last value. */
export class Settings {
  /** `pairs`: `[key, value]` pairs, an object, a Map or Settings. */
  constructor(pairs = []) {
    if (pairs instanceof Settings) pairs = pairs.pairs();
    else if (pairs instanceof Map) pairs = [...pairs];
    else if (!Array.isArray(pairs)) pairs = Object.entries(pairs);
    this.list = pairs.map(([k, v]) => [String(k), String(v)]);
    this.values = new Map(this.list);
  }

  /** The value of `key`, or undefined. */
  get(key) {
    return this.values.get(key);
  }

  /** The value of `key` read by `parse`, or `fallback` if not given. A value `parse` refuses
   * (by throwing) is an OperatorError naming the setting, its value and `expected`. */
  parseOr(key, fallback, parse, expected) {
    const value = this.values.get(key);
    if (value === undefined) return fallback;
    try {
      return parse(value);
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new OperatorError(`setting ${key}=${JSON.stringify(value)}: expected ${expected} (${why})`);
    }
  }

  /** Refuse any key not in `known`, naming it and the keys accepted. */
  checkKnown(known) {
    for (const [key] of this.list) {
      if (!known.includes(key)) {
        throw new OperatorError(`unknown setting ${JSON.stringify(key)} (accepted: ${known.length ? known.join(", ") : "none"})`);
      }
    }
  }

  /** The pairs as given. */
  pairs() {
    return this.list.map(([k, v]) => [k, v]);
  }
}
