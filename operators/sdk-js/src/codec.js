// Operator state as bytes: a JSON value behind one format version byte, so that a later
// version of an operator can tell what an earlier one wrote and refuse what it cannot read.
// The Python SDK writes the same encoding, so state moves between Python and JavaScript
// operators when their formats agree; Rust operators write postcard, which this refuses by
// name.

import { OperatorError } from "./errors.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** `value` (anything JSON.stringify takes, finite numbers only) behind the format byte
 * `format` (0 to 255). */
export function encode(format, value) {
  if (!Number.isInteger(format) || format < 0 || format > 255) {
    throw new OperatorError(`a state format is a byte (0 to 255), not ${format}`);
  }
  const json = JSON.stringify(value);
  // JSON.stringify writes NaN and the infinities as null: only then is the value walked to
  // refuse them (a replacer function would be an interpreted call per value, the bulk of a
  // snapshot's time in componentize-js).
  if (json.includes("null")) refuseNonFinite(value);
  const text = encoder.encode(json);
  const out = new Uint8Array(text.length + 1);
  out[0] = format;
  out.set(text, 1);
  return out;
}

/** Throws if `value` holds a number JSON cannot: NaN, Infinity or -Infinity. */
function refuseNonFinite(value) {
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new OperatorError(`state cannot hold ${value}`);
  } else if (value !== null && typeof value === "object" && typeof value.toJSON !== "function") {
    for (const item of Array.isArray(value) ? value : Object.values(value)) refuseNonFinite(item);
  }
}

/** The value `encode` wrote with format `format`. Another format byte, or bytes that are not
 * JSON, are an OperatorError that says which. */
export function decode(format, bytes) {
  if (bytes.length === 0) throw new OperatorError("state is empty (no format byte)");
  if (bytes[0] !== format) {
    throw new OperatorError(`state format ${bytes[0]} is not known to this version (it reads format ${format})`);
  }
  try {
    return JSON.parse(decoder.decode(bytes.subarray(1)));
  } catch (error) {
    throw new OperatorError(
      `state cannot be read as JSON (${error.message}); was it written by an operator in another language?`,
    );
  }
}
