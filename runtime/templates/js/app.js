// {{name}}: a weir operator in JavaScript. It starts as a map of one function (every record
// under the same key, its data upper-cased): replace `transform` with your logic, or extend
// Operator from weir-operator for keyed state.

import { exportOperator, mapRecords } from "weir-operator";

const text = new TextDecoder();

export const transform = mapRecords(
  (record, out) => out.emit(record.partitionKey, text.decode(record.data).toUpperCase()),
  { name: "{{name}}", version: "0.1.0" },
);

export const operator = exportOperator(transform);
