"""{{name}}: a weir operator in Python. It starts as a map of one function (every record under
the same key, its data upper-cased): replace `transform` with your logic, or subclass
`weir_operator.Operator` for keyed state (see the SDK's docstrings)."""

from weir_operator import Output, Record, export, map_records


@map_records(name="{{name}}", version="0.1.0")
def transform(record: Record, out: Output) -> None:
    out.emit(record.partition_key, record.data.upper())


Operator = export(transform)
