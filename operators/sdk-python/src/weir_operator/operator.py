"""What an operator is: a class with the contract's calls (`Operator`), the key its state
belongs to (`PartitionKey`, `JsonField`), and `map_records`, which makes one function into a
stateless operator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

from .errors import OperatorError, one_line
from .records import Batch, KeyedStates, Output, Record
from .settings import Settings


@dataclass(frozen=True)
class PartitionKey:
    """Route records by their partition key (stateless operators, and state per partition
    key)."""


@dataclass(frozen=True)
class JsonField:
    """Route records by the value of this top-level field of their JSON object: a string's
    text, any other value's JSON text; a record that is not a JSON object or lacks the field
    has the empty key."""

    name: str


Grouping = Union[PartitionKey, JsonField]


class Operator:
    """A stream operator: keyed state, fed batches of records, producing output records.

    Calls come in this order: the constructor (with the settings), then maybe `restore`, then
    any number of `process` and `tick`, then `finish` if the input ends; `snapshot` may be
    called between any two. An operator must be deterministic: it has no clock and no
    randomness; time comes from the host (`Batch.now_ms`, `Batch.watermark_ms`, `tick`, the
    records' arrival times).

    State belongs to the `grouping` key: the host sends every record of one key to the same
    instance, several instances run side by side, and state moves only through `snapshot` and
    `restore`, one entry per key (to a new version, another parallelism, after a crash).

    Raise `OperatorError` for what the operator refuses; any exception from `process` fails the
    batch, and the host then restores the state from before it and dead-letters the records
    that fail (with the exception's last traceback line as the reason).
    """

    #: The operator's name, as `weir check` and the logs show it.
    name = "operator"
    #: The operator's own version (not the contract's).
    version = "0.0.0"

    def __init__(self, settings: Settings) -> None:
        settings.check_known(())

    def grouping(self) -> Grouping:
        """The key this operator's state and results belong to."""
        return PartitionKey()

    def process(self, batch: Batch, out: Output) -> None:
        """Process a batch of one shard's records."""
        raise NotImplementedError(f"{type(self).__name__} does not define process(batch, out)")

    def tick(self, now_ms: int, watermark_ms: int, out: Output) -> None:
        """Processing time has advanced to `now_ms` without new input, and the event-time
        watermark is `watermark_ms` (`NO_WATERMARK` before any)."""

    def finish(self, now_ms: int, out: Output) -> None:
        """The input has ended: emit whatever is pending."""

    def snapshot(self, out: KeyedStates) -> None:
        """Append the whole state, one entry per grouping key (and at most one entry for
        `INSTANCE_KEY`). The default, for stateless operators, appends nothing."""

    def restore(self, state: KeyedStates) -> None:
        """Load entries `snapshot` produced: those of the keys this instance owns, possibly from
        several instances. The default, for stateless operators, ignores them."""


def map_records(
    function: Callable[[Record, Output], None] | None = None, *, name: str | None = None, version: str = "0.1.0"
):
    """Make `function(record, out)` a stateless operator that calls it on every record: it
    emits zero or more records per input (a map, a filter, a flat map). A record it raises on
    is refused with the error's message (it goes to the dead-letter destination) and the rest
    of the batch goes on. Use as `@map_records` or `@map_records(name=..., version=...)`."""

    def operator_of(function: Callable[[Record, Output], None]) -> type[Operator]:
        def process(self: Operator, batch: Batch, out: Output) -> None:
            for record in batch.records():
                try:
                    function(record, out)
                except Exception as error:  # noqa: BLE001 - each record's failure is its own
                    out.reject(record.index, one_line(error))

        return type(
            function.__name__,
            (Operator,),
            {
                "name": name or function.__name__.replace("_", "-"),
                "version": version,
                "process": process,
                "__doc__": function.__doc__,
                "__module__": function.__module__,
            },
        )

    return operator_of(function) if function is not None else operator_of


__all__ = ["Grouping", "JsonField", "Operator", "OperatorError", "PartitionKey", "map_records"]
