// {{name}} natively, through the SDK's harness: `node --test`.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Harness } from "weir-operator";
import { transform } from "../app.js";

test("every record comes out upper-cased under its key", () => {
  const h = new Harness(transform);
  h.push("k", "hello").endInput();
  assert.deepEqual(h.outputStrings(), [["k", "HELLO"]]);
});
