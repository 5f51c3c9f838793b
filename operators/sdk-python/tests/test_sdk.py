"""The SDK natively: packing, the two operator styles through the harness, settings, codec."""

import pytest

from weir_operator import (
    INSTANCE_KEY,
    Batch,
    Harness,
    JsonField,
    KeyedStates,
    Operator,
    OperatorError,
    Output,
    Record,
    Settings,
    codec,
    map_records,
)


@map_records
def shout(record: Record, out: Output) -> None:
    """Keeps the records whose data mentions AMZN, upper-cased."""
    if b"AMZN" in record.data:
        out.emit(record.partition_key, record.data.upper())


@map_records(name="price-of", version="2.0.0")
def price_of(record: Record, out: Output) -> None:
    import json

    out.emit(record.partition_key, str(json.loads(record.data)["PRICE"]))


class Count(Operator):
    """Counts records per ticker and emits the counts at the end of the input."""

    name = "count"
    version = "1.0.0"

    def __init__(self, settings: Settings) -> None:
        settings.check_known(["field"])
        self.field = settings.get("field") or "TICKER"
        self.counts: dict[str, int] = {}

    def grouping(self):
        return JsonField(self.field)

    def process(self, batch: Batch, out: Output) -> None:
        for record in batch.records():
            self.counts[record.partition_key] = self.counts.get(record.partition_key, 0) + 1

    def finish(self, now_ms: int, out: Output) -> None:
        for key in sorted(self.counts):
            out.emit(key, str(self.counts[key]))

    def snapshot(self, out: KeyedStates) -> None:
        for key, n in self.counts.items():
            out.push(key, codec.encode(1, n))

    def restore(self, state: KeyedStates) -> None:
        for key, data in state:
            self.counts[key] = codec.decode(1, data)


def test_a_batch_unpacks_its_columns_in_order():
    batch = Batch("shard-7", 5, -1, b"k1abck2de", [2, 2], [3, 2], [10, 11])
    assert len(batch) == 2
    assert list(batch.records()) == [Record(0, "k1", b"abc", 10), Record(1, "k2", b"de", 11)]


def test_a_batch_names_each_records_data_by_its_offsets_in_the_packed_bytes():
    batch = Batch("shard-7", 5, -1, b"k1abck2de", [2, 2], [3, 2], [10, 11])
    spans = list(batch.data_spans())
    assert spans == [(0, 2, 5), (1, 7, 9)]
    assert [batch.packed[start:end] for _, start, end in spans] == [b"abc", b"de"]


def test_a_batch_whose_lengths_disagree_with_its_bytes_is_refused():
    with pytest.raises(ValueError, match="add up to 5 bytes, the batch has 4"):
        Batch("s", 0, 0, b"abcd", [1], [4], [0])


def test_an_output_packs_what_is_emitted_and_reads_it_back():
    out = Output()
    out.emit("ä", b"\x00\x01")
    out.emit("k", "text")
    out.reject(3, "bad")
    out.observe_event_time(7)
    out.observe_event_time(5)
    assert out.packed() == "ä".encode() + b"\x00\x01ktext"
    assert (out.key_lens, out.data_lens) == ([2, 1], [2, 4])
    assert out.records() == [("ä", b"\x00\x01"), ("k", b"text")]
    assert out.rejected == [(3, "bad")]
    assert out.event_time_ms == 7


def test_a_map_function_keeps_filters_and_maps():
    h = Harness(shout)
    h.push("k", b"amzn? AMZN!").push("k", b"GOOG")
    h.end_input()
    assert h.output_strings() == [("k", "AMZN? AMZN!")]
    assert (shout.name, shout.version, shout.__doc__) == ("shout", "0.1.0", shout.__doc__)


def test_a_record_a_map_function_raises_on_is_dead_lettered_with_the_last_traceback_line():
    h = Harness(price_of)
    h.push("a", b'{"PRICE": 1.5}').push("b", b'{"TICKER": "X"}').push("c", b"not json")
    h.end_input()
    assert h.output_strings() == [("a", "1.5")]
    assert [(d.partition_key, d.reason) for d in h.dead_letters] == [
        ("b", "KeyError: 'PRICE'"),
        ("c", "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)"),
    ]
    assert price_of.name == "price-of" and price_of.version == "2.0.0"


def test_a_keyed_operator_carries_its_state_through_a_restart():
    h = Harness(Count, {"field": "TICKER"}, batch_size=2)
    h.push("AMZN", b"{}").push("AMZN", b"{}").push("GOOG", b"{}")
    state = h.snapshot()
    assert list(state) == [("AMZN", b"\x012"), ("GOOG", b"\x011")]
    h.restart_from(state)
    h.push("GOOG", b"{}")
    h.end_input()
    assert h.output_strings() == [("AMZN", "2"), ("GOOG", "2")]
    assert h.operator.grouping() == JsonField("TICKER")


def test_unknown_settings_and_bad_values_name_the_setting():
    with pytest.raises(OperatorError, match=r"unknown setting 'colour' \(accepted: field\)"):
        Harness(Count, {"colour": "red"})
    settings = Settings([("window", "ten"), ("window", "x")])
    with pytest.raises(OperatorError, match=r"setting window='x': expected a number of seconds"):
        settings.parse_or("window", 60, int, "a number of seconds")
    assert Settings([]).parse_or("window", 60, int, "seconds") == 60


def test_state_round_trips_and_what_cannot_be_read_is_named():
    data = codec.encode(3, {"max": 42.5, "n": 7})
    assert data[0] == 3
    assert codec.decode(3, data) == {"max": 42.5, "n": 7}
    with pytest.raises(OperatorError, match="state format 3 is not known to this version"):
        codec.decode(4, data)
    with pytest.raises(OperatorError, match="state is empty"):
        codec.decode(3, b"")
    with pytest.raises(OperatorError, match="another language"):
        codec.decode(3, b"\x03\x92\x81")


def test_keyed_states_keep_instance_wide_entries_and_sort_by_key():
    state = KeyedStates()
    state.push("b", b"2")
    state.push(INSTANCE_KEY, b"w")
    state.push("a", b"1")
    assert list(state.sorted()) == [("", b"w"), ("a", b"1"), ("b", b"2")]
    again = KeyedStates(state.packed(), state.key_lens, state.state_lens)
    assert again == state
