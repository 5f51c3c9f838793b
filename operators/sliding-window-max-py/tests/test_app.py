"""sliding-window-max in Python on hand-made streams: the cases of the Rust operator's
tests/windows.rs, natively through the SDK's harness."""

import json
import re
from datetime import datetime, timezone

import pytest

from app import SlidingWindowMax
from weir_operator import Harness, OperatorError

T0 = 1_795_600_800_000  # 2026-11-25T10:00:00Z


def trade(ticker: str, time_ms: int, price: float) -> bytes:
    return json.dumps({"EVENT_TIME": time_ms, "TICKER": ticker, "PRICE": price}).encode()


def harness(settings=()) -> Harness:
    """Every record a batch of its own, so each moves the watermark before the next."""
    return Harness(SlidingWindowMax, dict(settings), batch_size=1)


def millis(text: str) -> int:
    assert text.endswith("Z") and len(text) == 24, text
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def results(h: Harness) -> list[tuple]:
    out = []
    for key, data in h.output.records():
        v = json.loads(data)
        assert key == v["TICKER"]
        out.append((v["TICKER"], millis(v["WINDOW_START"]), millis(v["WINDOW_END"]), v["MAX_PRICE"], v["TRADES"]))
    return out


def w(ticker: str, start_s: int, end_s: int, top: float, trades: int) -> tuple:
    return (ticker, T0 + start_s * 1000, T0 + end_s * 1000, top, trades)


def test_output_is_exactly_the_documented_json():
    h = harness()
    h.push("AMZN", b'{"EVENT_TIME": "2026-11-25T10:00:05.5", "TICKER": "AMZN", "PRICE": 42.17}')
    h.end_input()
    assert h.output_strings()[0] == (
        "AMZN",
        '{"TICKER":"AMZN","WINDOW_START":"2026-11-25T09:59:10.000Z","WINDOW_END":"2026-11-25T10:00:10.000Z",'
        '"MAX_PRICE":42.17,"TRADES":1}',
    )


def test_a_trade_belongs_to_every_window_that_contains_it_and_boundaries_are_half_open():
    h = harness({"window": "60s", "slide": "10s", "out-of-orderness": "0s"})
    h.push("A", trade("A", T0, 5.0))
    h.end_input()
    assert [(r[1] - T0) // 1000 for r in results(h)] == [-50, -40, -30, -20, -10, 0]
    h = harness({"window": "10s", "slide": "10s", "out-of-orderness": "0s"})
    h.push("A", trade("A", T0 + 9_999, 1.0)).push("A", trade("A", T0 + 10_000, 2.0))
    h.end_input()
    assert results(h) == [w("A", 0, 10, 1.0, 1), w("A", 10, 20, 2.0, 1)]


def test_windows_fire_when_the_watermark_passes_their_end_not_before():
    h = harness({"window": "10s", "slide": "5s", "out-of-orderness": "1s"})
    h.push("A", trade("A", T0 + 1_000, 3.0)).push("A", trade("A", T0 + 9_999, 4.0))
    assert results(h) == [w("A", -5, 5, 3.0, 1)]
    h.push("A", trade("A", T0 + 11_000, 1.0))
    assert results(h) == [w("A", -5, 5, 3.0, 1), w("A", 0, 10, 4.0, 2)]


def test_late_trades_go_to_dead_letters_with_the_reason_and_partly_late_ones_count_where_they_can():
    h = harness({"window": "20s", "slide": "10s", "out-of-orderness": "0s"})
    h.push("A", trade("A", T0 + 1_000, 1.0)).push("A", trade("A", T0 + 25_000, 1.0))
    h.push("A", trade("A", T0 + 5_000, 50.0)).push("A", trade("A", T0 + 15_000, 7.0))
    h.end_input()
    assert results(h) == [w("A", -10, 10, 1.0, 1), w("A", 0, 20, 1.0, 1), w("A", 10, 30, 7.0, 2), w("A", 20, 40, 1.0, 1)]
    late, partly = h.dead_letters
    assert late.late == "all"
    assert late.reason.startswith("late: event time 2026-11-25T10:00:05.000Z is 20000 ms behind"), late.reason
    assert partly.late == "some"
    assert partly.reason.startswith(
        "partly late: event time 2026-11-25T10:00:15.000Z came after 1 of its 2 windows were emitted without it, "
        "[2026-11-25T10:00:00.000Z, 2026-11-25T10:00:20.000Z)"
    ), partly.reason


def test_bad_records_are_refused_with_the_reason_and_the_rest_still_count():
    h = harness({"window": "10s", "slide": "10s", "max-ahead": "1h"})
    h.set_time(T0)
    for bad in [
        b"{not json",
        b'{"TICKER": "A", "PRICE": 1}',
        trade("A", T0, -1.0),
        trade("A", T0 + 3_600_001, 5.0),
        b'{"EVENT_TIME": 1795600800000, "TICKER": "A", "PRICE": 1e999}',
        b'{"EVENT_TIME": "yesterday", "TICKER": "A", "PRICE": 1}',
        b'{"EVENT_TIME": 1, "TICKER": "A", "PRICE": "12"}',
        b'{"EVENT_TIME": 1, "TICKER": "", "PRICE": 1}',
        b'{"TICKER": "A", "PRICE": 1, "TICKER": "B"}',
        b"[1, 2]",
    ]:
        h.push("A", bad)
    h.push("A", trade("A", T0 + 1_000, 2.0))
    h.end_input()
    assert results(h) == [w("A", 0, 10, 2.0, 1)]
    reasons = [d.reason for d in h.dead_letters]
    expected = [
        "expected a JSON object",
        'missing field "EVENT_TIME"',
        "-1.0 is not a price",
        "ahead of processing time",
        "out of range",
        '"yesterday" is not an ISO-8601',
        "as a number",
        "is empty",
        'duplicate field "TICKER"',
        "a JSON object",
    ]
    assert len(reasons) == len(expected), reasons
    for reason, part in zip(reasons, expected):
        assert part in reason, (part, reason)


def test_a_field_named_twice_only_inside_a_nested_object_or_a_string_is_no_duplicate():
    h = harness({"window": "10s", "slide": "10s"})
    h.push("A", f'{{"EVENT_TIME": {T0}, "TICKER": "A", "PRICE": 1, "X": {{"TICKER": "B", "Z": 1, "Z": 2}}, "Y": "\\"TICKER\\""}}')
    h.end_input()
    assert results(h) == [w("A", 0, 10, 1.0, 1)]
    assert h.dead_letters == []


def test_processing_time_windows_fire_on_ticks_without_input():
    h = harness({"time": "processing", "window": "10s", "slide": "10s"})
    h.set_time(T0 + 1_000)
    h.push("A", b'{"TICKER": "A", "PRICE": 4}').push("A", trade("A", 0, 6.0))
    h.advance_time(T0 + 9_999)
    assert results(h) == []
    h.advance_time(T0 + 10_000)
    assert results(h) == [w("A", 0, 10, 6.0, 2)]


def test_snapshot_and_restore_mid_window_give_the_same_results():
    stream = [("ABC"[i % 3], T0 + i * 173, float(i % 17)) for i in range(200)]
    settings = {"window": "10s", "slide": "2s", "out-of-orderness": "300ms"}
    straight = harness(settings)
    for t, ms, p in stream:
        straight.push(t, trade(t, ms, p))
    straight.end_input()
    restarted = Harness(SlidingWindowMax, settings, batch_size=7)
    for i, (t, ms, p) in enumerate(stream):
        restarted.push(t, trade(t, ms, p))
        if i == 97:
            state = restarted.snapshot()
            assert any(key == "" for key, _ in state)
            restarted.restart_from(state)
    restarted.end_input()
    assert results(restarted) == results(straight)


def test_settings_are_checked_with_the_rust_operators_words():
    with pytest.raises(OperatorError, match="unknown setting 'colour'"):
        harness({"colour": "red"})
    with pytest.raises(OperatorError, match="slide .* is longer than window"):
        harness({"window": "10s", "slide": "1m"})
    with pytest.raises(OperatorError, match="setting window='soon'"):
        harness({"window": "soon"})
    assert harness({"window": "1m 30s"}).operator.window_ms == 90_000


def test_damaged_state_is_refused_naming_the_key():
    h = harness()
    h.push("A", trade("A", T0, 1.0))
    state = h.snapshot()
    broken = type(state)()
    for key, data in state:
        broken.push(key, data if key == "" else b"\x02" + data[1:])
    with pytest.raises(OperatorError, match='state of key "A": state format 2 is not known'):
        h.restart_from(broken)


def test_the_same_minute_shortcut_agrees_with_the_full_parse():
    from app import EventTimes, parse_time

    times = EventTimes()
    for minute in ["2026-11-25T10:00", "2026-11-25T10:01", "1999-12-31T23:59", "2026-11-25 10:01"]:
        for rest in [":00.000", ":07.500", ":59.999", ":30.1Z", ":30.123+01:00", ":05.12x", ":5.1234", ":05.123", ":60.000"]:
            text = minute + rest
            try:
                want = parse_time(text)
            except OperatorError:
                with pytest.raises(OperatorError):
                    times.parse(text)
                continue
            assert times.parse(text) == want, text
    assert times.prefix, "the shortcut was taken"


@pytest.mark.parametrize("settings", [{}, {"window": "1500ms", "slide": "500ms"}], ids=["panes of 10 s", "panes of 500 ms"])
def test_trades_in_the_producers_layout_give_what_the_json_decoder_gives(settings):
    """The layout's path (one regular expression, in place) against the decoder's: the same
    trades, once as the producer writes them and once with the fields in another order (which
    the layout does not read), must give the same results and the same refusals; with panes of
    whole seconds and of less than a second."""
    import random

    rng = random.Random(26)

    def stamp(ms: int) -> str:
        return datetime.fromtimestamp(ms // 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}"

    values = []
    for i in range(5000):
        # Times on and just before pane boundaries, now and then out of order.
        time = T0 + i // 4 * 250 - rng.choice([0, 0, 1]) - (3000 if rng.random() < 0.05 else 0)
        ticker = rng.choice(["AMZN", "T0001", "T0002", "ZZ.Z"] * 10 + ["A B", "Ω"])
        if i // 1200 % 2 == 0 and rng.random() < 0.2:
            # A ticker silent for longer than a window between its bursts: every window of it
            # fires, and its next trade sets its timer afresh.
            ticker = "GAP"
        price = rng.choice([f"{rng.uniform(0, 500):.2f}", "0", "17"] * 10 + ["-1.5", "1e3", "01"])
        when = rng.choice([stamp(time)] * 40 + ["2026-13-25T10:00:00.000", "2026-11-25T10:00:61.000", stamp(time + 10**11)])
        values.append((when, ticker, price))
    layout = [f'{{"EVENT_TIME": "{t}", "TICKER": "{k}", "PRICE": {p}}}'.encode() for t, k, p in values]
    shuffled = [f'{{"TICKER": "{k}", "PRICE": {p}, "EVENT_TIME": "{t}"}}'.encode() for t, k, p in values]

    def run(records):
        h = Harness(SlidingWindowMax, settings, batch_size=64)
        h.set_time(T0 + 60_000)
        for record in records:
            h.push(record.split(b'"TICKER": "')[1].split(b'"')[0].decode(), record)
        h.end_input()
        return h.output.records(), [(d.data, d.reason) for d in h.dead_letters], h.operator

    (out_a, dead_a, read_a), (out_b, dead_b, read_b) = run(layout), run(shuffled)
    assert read_a.by_bytes and not read_b.by_bytes, "the layout's path read the first run only"
    assert out_a == out_b
    # Where the decoder stops in a malformed record depends on the field order.
    where = re.compile(r"line 1 column \d+ \(char \d+\)")
    assert [where.sub("", r) for _, r in dead_a] == [where.sub("", r) for _, r in dead_b]
    assert len(out_a) > 100 and len(dead_a) > 100, (len(out_a), len(dead_a))
