// The operator natively, without WebAssembly: trades per CPU-second of `process` on the
// reference workload (1,000 tickers, trades 1 ms apart, in the producer's layout), batches of
// 1,024, best of 6 rounds. For comparing changes quickly (`--jitless` comes closer to the
// interpreter inside the component); the figures that count are the component's
// (`cargo bench -p weir --bench languages`, BENCHMARKS.md).
//
//     node [--jitless] bench.mjs [TRADES]

import { Batch, Output, Settings } from "weir-operator";

import { SlidingWindowMax } from "./app.js";

const T0 = 1_795_600_800_000; // 2026-11-25T10:00:00Z

function trades(n) {
  let seed = 1;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const prices = Array.from({ length: 1000 }, () => 10 + random() * 490);
  const encoder = new TextEncoder();
  const out = [];
  for (let i = 0; i < n; i++) {
    const k = Math.floor(random() * 1000);
    prices[k] = Math.max(0.01, prices[k] * (1 + (random() - 0.5) * 0.002));
    const when = new Date(T0 + i).toISOString().slice(0, 23);
    const ticker = `T${String(k).padStart(4, "0")}`;
    out.push(encoder.encode(`{"EVENT_TIME": "${when}", "TICKER": "${ticker}", "PRICE": ${prices[k].toFixed(2)}}`));
  }
  return out;
}

const lines = trades(Number(process.argv[2] ?? 200_000));
const batches = [];
for (let i = 0; i < lines.length; i += 1024) {
  const part = lines.slice(i, i + 1024);
  const bytes = new Uint8Array(part.reduce((sum, line) => sum + line.length, 0));
  let at = 0;
  for (const line of part) {
    bytes.set(line, at);
    at += line.length;
  }
  batches.push([bytes, part.map(() => 0), part.map((line) => line.length), part.map(() => 0n)]);
}
let best = Infinity;
let results = 0;
for (let round = 0; round < 6; round++) {
  const operator = new SlidingWindowMax(new Settings([]));
  let watermark = Number(-(2n ** 63n));
  results = 0;
  const started = process.cpuUsage();
  for (const [bytes, keyLens, dataLens, arrivals] of batches) {
    const out = new Output();
    operator.process(new Batch("s", T0 + 1e7, watermark, bytes, keyLens, dataLens, arrivals), out);
    if (out.eventTimeMs !== undefined) watermark = Math.max(watermark, out.eventTimeMs);
    results += out.length;
  }
  const out = new Output();
  operator.finish(0, out);
  results += out.length;
  const used = process.cpuUsage(started);
  best = Math.min(best, (used.user + used.system) / 1e6);
}
console.log(`${(lines.length / best / 1e3).toFixed(0)} k trades per CPU-second (node ${process.version} ${process.execArgv.join(" ")}), ${results} results`);
