"""Write weir operators in Python.

A weir operator runs in two places from the same code: natively under pytest, driven by the
`Harness` (feed records, advance processing time, end the input, read outputs, dead letters
and snapshots), and inside the weir host as a WebAssembly component built by componentize-py,
bound to the contract (`wit/operator.wit`, `CONTRACT`) by one line at the end of the module:
`Operator = weir_operator.export(MyOperator)`.

A stateless map or filter is one function::

    from weir_operator import Output, Record, export, map_records

    @map_records
    def shout(record: Record, out: Output) -> None:
        if b"AMZN" in record.data:
            out.emit(record.partition_key, record.data.upper())

    Operator = export(shout)

A stateful operator subclasses `Operator`, says what its grouping key is, and keeps its state
per key, encoded with `codec` (JSON behind a format version byte) in `snapshot` and read back
in `restore`.

Layout: `records` (Batch, Record, Output, KeyedStates: the contract's data, packed and unpacked
once), `operator` (Operator, the groupings, map_records), `settings`, `codec`, `errors`,
`harness` (the native driver) and `component` (the glue componentize-py calls).
"""

from . import codec
from .component import export
from .errors import OperatorError
from .harness import DeadLetter, Harness
from .operator import Grouping, JsonField, Operator, PartitionKey, map_records
from .records import INSTANCE_KEY, NO_WATERMARK, Batch, KeyedStates, Output, Record
from .settings import Settings

#: The contract this SDK binds to (`wit/operator.wit`).
CONTRACT = "weir:operator/operator@0.2.0"

__all__ = [
    "CONTRACT",
    "INSTANCE_KEY",
    "NO_WATERMARK",
    "Batch",
    "DeadLetter",
    "Grouping",
    "Harness",
    "JsonField",
    "KeyedStates",
    "Operator",
    "OperatorError",
    "Output",
    "PartitionKey",
    "Record",
    "Settings",
    "codec",
    "export",
    "map_records",
]
