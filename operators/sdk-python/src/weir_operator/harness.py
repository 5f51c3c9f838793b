"""A native test driver for operators: the host's call sequence without WebAssembly, for
pytest. The same calls as the Rust SDK's `Harness`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from .records import LATE, NO_WATERMARK, PARTLY_LATE, Batch, KeyedStates, Output
from .operator import Operator
from .settings import Settings


@dataclass(frozen=True)
class DeadLetter:
    """A record the operator refused, with its reason."""

    partition_key: str
    data: bytes
    reason: str

    @property
    def late(self) -> str | None:
        """"all" for a record refused as late, "some" for one reported partly late, else None."""
        if self.reason.startswith(LATE):
            return "all"
        if self.reason.startswith(PARTLY_LATE):
            return "some"
        return None


class Harness:
    """Drives one operator instance the way the host does: records are gathered into a batch,
    which is processed when it is full, when time advances, or when the input ends.

    The harness is a host reading one shard: the watermark is the latest event time the
    operator reported, passed back at once with a `tick`, so a test sees windows fire right
    after the record that moved the watermark. Processing time starts at 0 and moves only when
    `set_time` or `advance_time` says so; records get it as their arrival time unless pushed
    with one.
    """

    def __init__(
        self,
        operator: type[Operator],
        settings: Settings | dict[str, str] | Iterable[tuple[str, str]] = (),
        *,
        batch_size: int = 1024,
        shard_id: str = "shard-0",
    ) -> None:
        self._class = operator
        self._settings = Settings.of(settings)
        self.operator = operator(self._settings)
        self._batch_size = max(1, batch_size)
        self._shard_id = shard_id
        self._pending: list[tuple[str, bytes, int]] = []
        self.now_ms = 0
        self.watermark_ms = NO_WATERMARK
        self.output = Output()
        self.dead_letters: list[DeadLetter] = []

    def push(self, partition_key: str, data: bytes | str, arrival_time_ms: int | None = None) -> Harness:
        """Add a record (arriving now, unless given a time); a full batch is processed at once."""
        if isinstance(data, str):
            data = data.encode()
        self._pending.append((partition_key, bytes(data), self.now_ms if arrival_time_ms is None else arrival_time_ms))
        if len(self._pending) >= self._batch_size:
            self.flush()
        return self

    def batch(self) -> Batch:
        """The pending records as the host would pack them."""
        keys = [key.encode() for key, _, _ in self._pending]
        packed = b"".join(key + data for key, (_, data, _) in zip(keys, self._pending))
        return Batch(
            self._shard_id,
            self.now_ms,
            self.watermark_ms,
            packed,
            [len(key) for key in keys],
            [len(data) for _, data, _ in self._pending],
            [arrival for _, _, arrival in self._pending],
        )

    def flush(self) -> None:
        """Process the pending records now, as one batch."""
        if not self._pending:
            return
        batch = self.batch()
        out = Output()
        self.operator.process(batch, out)
        for index, reason in out.rejected:
            key, data, _ = self._pending[index]
            self.dead_letters.append(DeadLetter(key, data, reason))
        out.rejected.clear()
        self._pending.clear()
        self.output.extend(out)
        if out.event_time_ms is not None and out.event_time_ms > self.watermark_ms:
            self.watermark_ms = out.event_time_ms
            self._tick()

    def _tick(self) -> None:
        out = Output()
        self.operator.tick(self.now_ms, self.watermark_ms, out)
        self.output.extend(out)

    def set_time(self, now_ms: int) -> Harness:
        """Set processing time without telling the operator; records pushed afterwards carry
        it."""
        self.flush()
        self.now_ms = now_ms
        return self

    def advance_time(self, now_ms: int) -> None:
        """Process pending records, move processing time to `now_ms` and tick the operator."""
        self.flush()
        self.now_ms = now_ms
        self._tick()

    def end_input(self) -> None:
        """Process pending records and end the input."""
        self.flush()
        out = Output()
        self.operator.finish(self.now_ms, out)
        self.output.extend(out)

    def output_strings(self) -> list[tuple[str, str]]:
        """Everything emitted so far, as `(key, data)` strings."""
        return [(key, data.decode("utf-8", "replace")) for key, data in self.output.records()]

    def take_output(self) -> Output:
        """Remove and return everything emitted so far."""
        taken, self.output = self.output, Output()
        return taken

    def snapshot(self) -> KeyedStates:
        """The operator's keyed snapshot (pending records processed first), sorted by key."""
        self.flush()
        state = KeyedStates()
        self.operator.snapshot(state)
        return state.sorted()

    def restart_from(self, state: KeyedStates) -> None:
        """Replace the operator with a fresh instance of the same settings restored from
        `state`, as the host does on a swap, a change of parallelism or a restart. Output so far
        and the watermark (the host's) are kept."""
        self.flush()
        operator = self._class(self._settings)
        operator.restore(state)
        self.operator = operator
