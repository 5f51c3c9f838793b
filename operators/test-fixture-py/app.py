"""An operator in Python that misbehaves on request: the weir host's fixture for Python
exceptions, CPU and memory limits, and state carried across a swap.

Otherwise it echoes every record (same key, same data) and counts records per partition key.
Settings, each naming a text that triggers it when a record's data contains it:

- `raise-on`: raise an exception (`ZeroDivisionError`) while processing that record;
- `reject-on`: refuse that record;
- `spin-on`: loop forever on it (for the CPU limit);
- `alloc-on`: allocate without bound on it (for the memory limit);
- `tag=TEXT`: add `TEXT` to every echoed record (to tell two versions apart);
- `emit-counts=true`: at the end of the input, emit each key's count.
"""

from weir_operator import Batch, KeyedStates, Operator, OperatorError, Output, Settings, codec, export


class Fixture(Operator):
    name = "test-fixture-py"
    version = "0.2.0"

    def __init__(self, settings: Settings) -> None:
        settings.check_known(["raise-on", "reject-on", "spin-on", "alloc-on", "tag", "emit-counts"])
        self.triggers = {
            name: text.encode()
            for name in ("raise-on", "reject-on", "spin-on", "alloc-on")
            if (text := settings.get(name))
        }
        self.tag = (settings.get("tag") or "").encode()
        self.emit_counts = settings.get("emit-counts") == "true"
        self.counts: dict[str, int] = {}

    def on(self, name: str, data: bytes) -> bool:
        trigger = self.triggers.get(name)
        return trigger is not None and trigger in data

    def process(self, batch: Batch, out: Output) -> None:
        for record in batch.records():
            data = record.data
            if self.on("raise-on", data):
                _ = len(data) / 0
            if self.on("spin-on", data):
                while True:
                    pass
            if self.on("alloc-on", data):
                hoard = []
                while True:
                    hoard.append(bytearray(1 << 20))
            if self.on("reject-on", data):
                out.reject(record.index, f"refused: the data contains {self.triggers['reject-on'].decode()!r}")
                continue
            self.counts[record.partition_key] = self.counts.get(record.partition_key, 0) + 1
            out.emit(record.partition_key, data + self.tag)

    def finish(self, now_ms: int, out: Output) -> None:
        if self.emit_counts:
            for key in sorted(self.counts):
                out.emit(key, f"{key}={self.counts[key]}")

    def snapshot(self, out: KeyedStates) -> None:
        for key, count in self.counts.items():
            out.push(key, codec.encode(1, count))

    def restore(self, state: KeyedStates) -> None:
        for key, data in state:
            count = codec.decode(1, data)
            if not isinstance(count, int):
                raise OperatorError(f"state of key {key!r} is not a count")
            self.counts[key] = self.counts.get(key, 0) + count


Operator = export(Fixture)
