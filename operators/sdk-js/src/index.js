// Write weir operators in JavaScript.
//
// A weir operator runs in two places from the same code: natively under node's test runner,
// driven by the Harness, and inside the weir host as a WebAssembly component built by
// componentize-js, bound to the contract (`wit/operator.wit`, CONTRACT) by one line at the end
// of the module: `export const operator = exportOperator(MyOperator)`.
//
// A stateless map or filter is one function:
//
//   import { exportOperator, mapRecords } from "weir-operator";
//   const shout = mapRecords((record, out) => out.emit(record.partitionKey, upper(record.data)), { name: "shout" });
//   export const operator = exportOperator(shout);
//
// A stateful operator extends Operator, says what its grouping key is, and keeps its state per
// key, encoded with `codec` (JSON behind a format byte, as the Python SDK writes it).
//
// Layout: records.js (Batch, Output, KeyedStates: the contract's data, packed and unpacked once),
// operator.js (Operator, the groupings, mapRecords), settings.js, codec.js, errors.js,
// harness.js (the native driver) and component.js (the object componentize-js binds).

export * as codec from "./codec.js";
export { exportOperator } from "./component.js";
export { OperatorError, oneLine } from "./errors.js";
export { DeadLetter, Harness } from "./harness.js";
export { JsonField, Operator, PartitionKey, mapRecords } from "./operator.js";
export { Batch, INSTANCE_KEY, KeyedStates, LATE, NO_WATERMARK, Output, PARTLY_LATE } from "./records.js";
export { Settings } from "./settings.js";

/** The contract this SDK binds to (`wit/operator.wit`). */
export const CONTRACT = "weir:operator/operator@0.2.0";
