// Builds one JavaScript operator into a component: bundles its module with the weir-operator
// SDK (rolldown; componentize-js takes one module), then componentize-js with every WASI
// feature the contract gives no use for turned off. Run by scripts/build-components from the
// pinned tools folder, where its imports resolve.
//
//   node componentize-js.mjs APP.js SDK/src/index.js WIT_DIR OUT.wasm [WEVAL]
//
// With WEVAL (the path of a weval binary), the component is compiled ahead of time: weval
// specializes SpiderMonkey's interpreter to the operator's code (componentize-js's AOT option,
// which would otherwise download weval).
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { componentize } from "@bytecodealliance/componentize-js";
import { rolldown } from "rolldown";

const [input, sdk, wit, out, weval] = process.argv.slice(2).map((path) => resolve(path));
const bundle = await rolldown({ input, resolve: { alias: { "weir-operator": sdk } }, platform: "neutral" });
const scratch = await mkdtemp(join(tmpdir(), "weir-componentize-"));
try {
  const bundled = join(scratch, "operator.js");
  await bundle.write({ file: bundled, format: "esm" });
  const { component } = await componentize({
    sourcePath: bundled,
    witPath: wit,
    worldName: "operator-component",
    // stdio stays: an uncaught error's message reaches the host's log.
    disableFeatures: ["random", "clocks", "http", "fetch-event"],
    ...(weval ? { enableAot: true, wevalBin: weval } : {}),
  });
  await writeFile(out, component);
} finally {
  await rm(scratch, { recursive: true, force: true });
}
