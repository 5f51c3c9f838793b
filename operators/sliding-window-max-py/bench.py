"""The operator natively, without WebAssembly: trades per CPU-second of `process` on the
reference workload (1,000 tickers, trades 1 ms apart, in the producer's layout), batches of
1,024, best of 6 rounds. For comparing changes quickly; the figures that count are the
component's (`cargo bench -p weir --bench languages`, BENCHMARKS.md).

    PYTHONPATH=.:../sdk-python/src python3 bench.py [TRADES]
"""

import random
import sys
import time
from datetime import datetime, timezone

from weir_operator import Batch, Output, Settings

from app import SlidingWindowMax

T0 = 1_795_600_800_000  # 2026-11-25T10:00:00Z


def trades(n: int) -> list[bytes]:
    rng = random.Random(1)
    prices = [rng.uniform(10, 500) for _ in range(1000)]
    out = []
    for i in range(n):
        k = rng.randrange(1000)
        prices[k] = max(0.01, prices[k] * (1 + rng.uniform(-0.001, 0.001)))
        ms = T0 + i
        when = datetime.fromtimestamp(ms // 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}"
        out.append(f'{{"EVENT_TIME": "{when}", "TICKER": "T{k:04d}", "PRICE": {prices[k]:.2f}}}'.encode())
    return out


def main() -> None:
    lines = trades(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
    batches = []
    for i in range(0, len(lines), 1024):
        part = lines[i : i + 1024]
        batches.append((b"".join(part), [0] * len(part), [len(line) for line in part], [0] * len(part)))
    best = None
    for _ in range(6):
        operator = SlidingWindowMax(Settings.of({}))
        watermark, results = -(2**63), 0
        started = time.process_time()
        for packed, key_lens, data_lens, arrivals in batches:
            out = Output()
            operator.process(Batch("s", T0 + 10**7, watermark, packed, key_lens, data_lens, arrivals), out)
            if out.event_time_ms is not None:
                watermark = max(watermark, out.event_time_ms)
            results += len(out)
        out = Output()
        operator.finish(0, out)
        results += len(out)
        took = time.process_time() - started
        best = took if best is None else min(best, took)
    print(f"{len(lines) / best / 1e3:.0f} k trades per CPU-second (CPython {sys.version.split()[0]}), {results} results")


if __name__ == "__main__":
    main()
