"""The glue between an `Operator` class and the WebAssembly contract, for componentize-py.

An operator's module ends with `Operator = weir_operator.export(MyOperator)`: componentize-py
looks up the class named after the exported interface (`operator`) and calls it. The calls
convert the contract's records to the SDK's types and back, once per call, and turn an
exception into the contract's error string. The bindings (`wit_world`) exist only inside a
component build: natively (under pytest) `export` hands back the operator class itself, so the
module that ends with it imports and tests as plain Python.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from .errors import one_line
from .operator import JsonField, Operator
from .records import Batch, KeyedStates, Output
from .settings import Settings

T = TypeVar("T")


def export(operator: type[Operator]) -> type:
    """The class componentize-py calls for the contract's `operator` interface, running
    `operator`. One instance per component instance (the host instantiates one per
    `--parallelism`). Natively, `operator` itself."""
    try:
        from componentize_py_types import Err  # noqa: PLC0415 - only inside a component build
        from wit_world.imports import types as wit  # noqa: PLC0415
    except ImportError:
        return operator

    state: dict[str, Operator] = {}

    def call(what: Callable[[], T]) -> T:
        try:
            return what()
        except Exception as error:  # noqa: BLE001 - every failure crosses as the contract's error
            raise Err(one_line(error)) from None

    def running() -> Operator:
        instance = state.get("instance")
        if instance is None:
            raise RuntimeError("the host called the operator before init")
        return instance

    def output(out: Output) -> Any:
        rejected = [wit.Rejection(index, reason) for index, reason in out.rejected]
        return wit.Output(out.packed(), out.key_lens, out.data_lens, rejected, out.event_time_ms)

    def produce(work: Callable[[Operator, Output], None]) -> Any:
        out = Output()
        call(lambda: work(running(), out))
        return output(out)

    class Component:
        def describe(self) -> Any:
            return wit.OperatorInfo(operator.name, operator.version)

        def init(self, settings: list[tuple[str, str]]) -> None:
            state["instance"] = call(lambda: operator(Settings(settings)))

        def grouping_key(self) -> Any:
            grouping = running().grouping()
            if isinstance(grouping, JsonField):
                return wit.Grouping_JsonField(grouping.name)
            return wit.Grouping_PartitionKey()

        def process(self, batch: Any) -> Any:
            records = Batch(
                batch.shard_id,
                batch.now_ms,
                batch.watermark_ms,
                batch.bytes,
                batch.key_lens,
                batch.data_lens,
                batch.arrival_times_ms,
            )
            return produce(lambda op, out: op.process(records, out))

        def tick(self, now_ms: int, watermark_ms: int) -> Any:
            return produce(lambda op, out: op.tick(now_ms, watermark_ms, out))

        def finish(self, now_ms: int) -> Any:
            return produce(lambda op, out: op.finish(now_ms, out))

        def snapshot(self) -> Any:
            states = KeyedStates()
            call(lambda: running().snapshot(states))
            return wit.KeyedStates(states.packed(), states.key_lens, states.state_lens)

        def restore(self, state: Any) -> None:
            states = call(lambda: KeyedStates(state.bytes, state.key_lens, state.state_lens))
            call(lambda: running().restore(states))

    Component.__name__ = Component.__qualname__ = "Operator"
    Component.__doc__ = f"The contract's operator interface, running {operator.__name__}."
    return Component
