"""weir's reference operator in Python: per ticker, the maximum price and the number of trades
over sliding windows, one output record per (ticker, window) that saw at least one trade.

The same settings, grouping (TICKER), windows, outputs and lateness rules as the Rust
operator (`operators/sliding-window-max`): windows are `[start, start + window)` with `start` a
multiple of `slide` from the Unix epoch; in event time a window fires when the host's watermark
minus `out-of-orderness` reaches its end; in processing time when the host's clock does; what is
pending fires when the input ends. A trade is late (dead-lettered) only when every window it
belongs to fired; one that missed some is counted in the others and reported as partly late.

Time is kept in panes of gcd(window, slide) per ticker; a window's result combines its panes.
State (`snapshot`) is JSON behind format byte 1 (`weir_operator.codec`), which the JavaScript
version reads too.
"""

from __future__ import annotations

import heapq
import json
import math
import re
from datetime import datetime, timedelta, timezone

from weir_operator import (
    INSTANCE_KEY,
    Batch,
    JsonField,
    KeyedStates,
    Operator,
    OperatorError,
    Output,
    Settings,
    codec,
    export,
)

#: The state format: 1 = JSON `[closed_through, [[start, max, count], ...]]` per key and
#: `[max_event_time, watermark]` for the instance.
FORMAT = 1
NEVER = -(2**63)
END = 2**63 - 1
KNOWN = ("window", "slide", "time", "out-of-orderness", "max-ahead", "event-time-field", "ticker-field", "price-field")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_DURATION = re.compile(r"^\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?!s))?\s*(?:(\d+)\s*s)?\s*(?:(\d+)\s*ms)?\s*$")


def duration_ms(value: str) -> int:
    """`60s`, `1m 30s`, `500ms`, `2h` or a number of milliseconds."""
    try:
        return int(value.strip())
    except ValueError:
        pass
    match = _DURATION.match(value)
    if not match or not any(match.groups()):
        raise ValueError("write a duration such as 60s, 500ms or 1m")
    h, m, s, ms = (int(g or 0) for g in match.groups())
    return ((h * 60 + m) * 60 + s) * 1000 + ms


class EventTimes:
    """Event times as epoch ms, remembering the last minute seen: consecutive trades almost
    always fall in the same minute, and a time written `YYYY-MM-DDTHH:MM:SS.fff` in that minute
    only needs its seconds and milliseconds read (as the Rust operator does)."""

    __slots__ = ("prefix", "minute_ms")

    def __init__(self) -> None:
        self.prefix = ""
        self.minute_ms = 0

    def parse(self, text: str) -> int:
        if len(text) == 23 and text[:16] == self.prefix and text[16] == ":" and text[19] == ".":
            digits = text[17:19] + text[20:23]
            if digits.isascii() and digits.isdigit() and digits < "60":
                return self.minute_ms + int(digits[:2]) * 1000 + int(digits[2:])
        ms = parse_time(text)
        if len(text) == 23 and text[16] == ":" and text[19] == "." and ms >= 0:
            offset = text[17:19] + text[20:23]
            if offset.isascii() and offset.isdigit() and offset < "60":
                self.prefix = text[:16]
                self.minute_ms = ms - int(offset[:2]) * 1000 - int(offset[2:])
        return ms


def parse_time(text: str) -> int:
    """An ISO-8601 date-time with or without offset (none means UTC) as epoch ms."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise OperatorError(f"{json.dumps(text)} is not an ISO-8601 date-time such as 2026-11-25T10:00:00.123 ({error})") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def timestamp(ms: int) -> str:
    """A time as RFC 3339 UTC with milliseconds, as the Rust operator writes it."""
    try:
        return (EPOCH + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
    except OverflowError:
        return str(ms)


def number(value: float) -> str:
    """A price as JSON, the shortest text that reads back as the same number."""
    return repr(float(value))


class Key:
    """One ticker's state: its panes (start -> [max, count]), the end of its last fired window,
    and the end of the window its live timer fires."""

    __slots__ = ("ticker", "quoted", "panes", "last_fired_end", "timer")

    def __init__(self, ticker: str) -> None:
        self.ticker = ticker
        #: The ticker as a JSON string, made at its first result.
        self.quoted: str | None = None
        self.panes: dict[int, list] = {}
        self.last_fired_end = NEVER
        self.timer = END

    def count(self, pane: int, price: float, candidate: int) -> bool:
        """Count a trade at `price` in `pane`; True when `candidate`, the first window still open
        that holds the pane, ends before the key's timer, which it then becomes."""
        slot = self.panes.get(pane)
        if slot is None:
            self.panes[pane] = [price, 1]
        else:
            if price > slot[0]:
                slot[0] = price
            slot[1] += 1
        if candidate >= self.timer:
            return False
        self.timer = candidate
        return True


class SlidingWindowMax(Operator):
    name = "sliding-window-max"
    version = "0.2.0"

    def __init__(self, settings: Settings) -> None:
        settings.check_known(KNOWN)
        duration = "a duration such as 60s, 500ms or 1m"
        self.window_ms = settings.parse_or("window", 60_000, duration_ms, duration)
        self.slide_ms = settings.parse_or("slide", 10_000, duration_ms, duration)
        self.processing = settings.parse_or("time", False, _time_mode, "event or processing")
        self.out_of_orderness_ms = settings.parse_or("out-of-orderness", 1_000, duration_ms, duration)
        self.max_ahead_ms = settings.parse_or("max-ahead", 86_400_000, duration_ms, duration)
        self.time_field = settings.parse_or("event-time-field", "EVENT_TIME", _field, "a field name")
        self.ticker_field = settings.parse_or("ticker-field", "TICKER", _field, "a field name")
        self.price_field = settings.parse_or("price-field", "PRICE", _field, "a field name")
        if self.window_ms <= 0 or self.slide_ms <= 0:
            raise OperatorError(f"window ({self.window_ms} ms) and slide ({self.slide_ms} ms) must both be positive")
        if self.slide_ms > self.window_ms:
            raise OperatorError(
                f"slide ({self.slide_ms} ms) is longer than window ({self.window_ms} ms): trades between windows "
                "would belong to none; use slide <= window"
            )
        if self.out_of_orderness_ms < 0 or self.max_ahead_ms < 0:
            raise OperatorError("out-of-orderness and max-ahead cannot be negative")
        self.pane_ms = math.gcd(self.window_ms, self.slide_ms)
        self.quoted_fields = [json.dumps(f) for f in (self.time_field, self.ticker_field, self.price_field)]
        self.times = EventTimes()
        names = (self.time_field, self.ticker_field, self.price_field)
        self.checking = json.JSONDecoder(
            parse_constant=_no_constant, object_pairs_hook=lambda pairs: _no_duplicates(pairs, names)
        )
        # Records in the producer's layout (`{"EVENT_TIME": "...", "TICKER": "...", "PRICE": ...}`,
        # with or without the spaces) are read in place by one regular expression that accepts
        # only text the JSON decoder reads the same; anything else (another order, escapes,
        # other fields, a value out of the ordinary) takes the decoder, which says what is wrong.
        self.layout = _layout(self.time_field, self.ticker_field, self.price_field)
        #: Epoch ms of each `YYYY-MM-DDTHH:MM:SS` seen (consecutive trades share a few).
        self.seconds: dict[bytes, int] = {}
        #: The keys by the ticker's bytes, as the layout reads them.
        self.by_bytes: dict[bytes, Key] = {}
        self.keys: dict[str, Key] = {}
        #: Window times as results write them, by epoch ms.
        self.stamps: dict[int, str] = {}
        #: (window end, ticker) of pending windows, earliest first; stale when not the key's timer.
        self.timers: list[tuple[int, str]] = []
        self.max_event_time = NEVER
        self.watermark = NEVER

    def grouping(self) -> JsonField:
        return JsonField(self.ticker_field)

    def first_end_containing(self, pane: int, after: int) -> int:
        w, s = self.window_ms, self.slide_ms
        first = (pane - w) // s * s + s + w
        return first if after == NEVER else max(first, (after - w) // s * s + s + w)

    def trade(self, data: bytes) -> tuple[int | None, str, float]:
        """(event time, ticker, price) of a record; OperatorError says what is wrong."""
        try:
            text = data.decode()
            # One decoder for every record (json.loads with options builds one per call). A
            # field named twice is refused as Rust's operator refuses it: a name's second
            # occurrence anywhere in the text sends the record through the checking decoder.
            time_name, ticker_name, price_name = self.quoted_fields
            if text.count(ticker_name) > 1 or text.count(price_name) > 1 or text.count(time_name) > 1:
                trade = self.checking.decode(text)
            else:
                trade = _PLAIN.decode(text)
        except json.JSONDecodeError as error:
            raise OperatorError(f"expected a JSON object with a trade ({error})") from None
        except UnicodeDecodeError as error:
            raise OperatorError(f"the record is not UTF-8 ({error})") from None
        if not isinstance(trade, dict):
            raise OperatorError("invalid type: expected a JSON object with a trade")
        ticker = trade.get(self.ticker_field)
        if ticker is None:
            raise OperatorError(f"missing field {json.dumps(self.ticker_field)}")
        if not isinstance(ticker, str):
            raise OperatorError(f"field {json.dumps(self.ticker_field)}: expected the ticker as a string")
        if not ticker:
            raise OperatorError(f"field {json.dumps(self.ticker_field)} is empty")
        price = trade.get(self.price_field)
        if price is None:
            raise OperatorError(f"missing field {json.dumps(self.price_field)}")
        if isinstance(price, bool) or not isinstance(price, (int, float)):
            raise OperatorError(f"field {json.dumps(self.price_field)}: expected the price as a number")
        if isinstance(price, float) and math.isinf(price):
            raise OperatorError(f"field {json.dumps(self.price_field)}: number out of range")
        time = trade.get(self.time_field)
        if time is not None:
            if isinstance(time, str):
                try:
                    time = self.times.parse(time)
                except OperatorError as error:
                    raise OperatorError(f"field {json.dumps(self.time_field)}: {error}") from None
            elif isinstance(time, bool) or not isinstance(time, (int, float)):
                raise OperatorError(
                    f"field {json.dumps(self.time_field)}: expected an ISO-8601 date-time string or epoch milliseconds"
                )
            elif isinstance(time, float):
                if not (math.isfinite(time) and abs(time) < 9.0e15):
                    raise OperatorError(f"field {json.dumps(self.time_field)}: {time} is out of range")
                time = math.floor(time)
            elif not NEVER <= time <= END:
                raise OperatorError(f"field {json.dumps(self.time_field)}: {time} is out of range")
        return time, ticker, float(price)

    def lateness(self, time: int, closed: int) -> str | None:
        """For a trade behind `closed`: raises if every window it belongs to closed (late),
        else the partly-late reason, or None."""
        w, s = self.window_ms, self.slide_ms
        first_end = (time - w) // s * s + s + w
        last_end = time // s * s + w
        if last_end <= closed:
            raise _Late(
                f"event time {timestamp(time)} is {closed - time} ms behind the watermark {timestamp(closed)}, "
                f"and every window it belongs to has been emitted (raise out-of-orderness, now "
                f"{self.out_of_orderness_ms} ms, to wait longer)"
            )
        if first_end > closed:
            return None
        missed_last = (closed - w) // s * s + w
        missed = (missed_last - first_end) // s + 1
        return (
            f"event time {timestamp(time)} came after {missed} of its {(last_end - first_end) // s + 1} windows "
            f"were emitted without it, [{timestamp(first_end - w)}, {timestamp(first_end)}) to "
            f"[{timestamp(missed_last - w)}, {timestamp(missed_last)}); it counts in the others (raise "
            f"out-of-orderness, now {self.out_of_orderness_ms} ms, to wait longer)"
        )

    def add(self, ticker: str, time: int, price: float) -> str | None:
        key = self.keys.get(ticker)
        fired = key.last_fired_end if key else NEVER
        closed = max(fired, self.watermark)
        partly = self.lateness(time, closed) if time < closed else None
        pane = time // self.pane_ms * self.pane_ms
        candidate = self.first_end_containing(pane, closed)
        if key is None:
            key = self.keys[ticker] = Key(ticker)
        if key.count(pane, price, candidate):
            heapq.heappush(self.timers, (candidate, ticker))
        return partly

    def advance_watermark(self, to: int, out: Output) -> None:
        if to > self.watermark:
            self.watermark = to
        self.fire_until(self.watermark, out)

    def fire_until(self, limit: int, out: Output) -> None:
        w, s = self.window_ms, self.slide_ms
        timers, keys, stamp = self.timers, self.keys, self.stamp
        while timers and timers[0][0] <= limit:
            end, ticker = heapq.heappop(timers)
            key = keys[ticker]
            if key.timer != end:
                continue
            # One pass over the panes: drop those before the window, combine those in it, find
            # the first a later window holds.
            start, horizon = end - w, end + s - w
            top, count, stale, following = None, 0, None, END
            for pane, slot in key.panes.items():
                if pane < start:
                    if stale is None:
                        stale = []
                    stale.append(pane)
                    continue
                if pane < end:
                    if top is None or slot[0] > top:
                        top = slot[0]
                    count += slot[1]
                if horizon <= pane < following:
                    following = pane
            if stale is not None:
                for pane in stale:
                    del key.panes[pane]
            key.last_fired_end = end
            if top is not None:
                if key.quoted is None:
                    key.quoted = json.dumps(ticker)
                out.emit(
                    ticker,
                    f'{{"TICKER":{key.quoted},"WINDOW_START":"{stamp(start)}",'
                    f'"WINDOW_END":"{stamp(end)}","MAX_PRICE":{number(top)},"TRADES":{count}}}',
                )
            if following != END:
                key.timer = max((following - w) // s * s + s + w, end + s)
                heapq.heappush(timers, (key.timer, ticker))
            else:
                key.timer = END

    def stamp(self, ms: int) -> str:
        """`timestamp(ms)`, remembered: every key's windows start and end at the same times."""
        text = self.stamps.get(ms)
        if text is None:
            if len(self.stamps) >= 4096:
                self.stamps.clear()
            text = self.stamps[ms] = timestamp(ms)
        return text

    def process(self, batch: Batch, out: Output) -> None:
        if self.processing:
            self.fire_until(self.watermark, out)
            now = max(batch.now_ms, self.watermark)
            packed = batch.packed
            for index, start, end in batch.data_spans():
                self.record(batch, out, index, packed[start:end], now)
            self.advance_watermark(now, out)
            return
        self.advance_watermark(_saturating_sub(batch.watermark_ms, self.out_of_orderness_ms), out)
        now = max(batch.now_ms, self.watermark)
        # The layout's path: what `record` and `add` do for a trade in the producer's layout,
        # of a known ticker, neither late nor too far ahead (any other takes `record`).
        packed, fullmatch = batch.packed, self.layout.fullmatch
        seconds, by_bytes, timers, watermark = self.seconds, self.by_bytes, self.timers, self.watermark
        w, s, pane_ms = self.window_ms, self.slide_ms, self.pane_ms
        ahead = batch.now_ms + self.max_ahead_ms if batch.now_ms > 0 else END
        latest = NEVER
        for index, start, end in batch.data_spans():
            match = fullmatch(packed, start, end)
            if match is not None:
                second, millis, ticker, price = match.groups()
                base = seconds.get(second)
                if base is None:
                    base = self.second(second)
                key = by_bytes.get(ticker)
                if base is not None and key is not None:
                    time = base + int(millis)
                    fired = key.last_fired_end
                    closed = fired if fired > watermark else watermark
                    if closed <= time <= ahead:
                        pane = time // pane_ms * pane_ms
                        # `first_end_containing(pane, closed)`: with the trade at or after
                        # `closed`, so is the first window that holds its pane.
                        candidate = (pane - w) // s * s + s + w
                        if key.count(pane, float(price), candidate):
                            heapq.heappush(timers, (candidate, key.ticker))
                        if time > latest:
                            latest = time
                        continue
                self.record(batch, out, index, packed[start:end], now)
                if key is None and (known := self.keys.get(ticker.decode())) is not None:
                    by_bytes[ticker] = known
                continue
            self.record(batch, out, index, packed[start:end], now)
        if latest != NEVER:
            out.observe_event_time(latest)
            if latest > self.max_event_time:
                self.max_event_time = latest

    def second(self, second: bytes) -> int | None:
        """Epoch ms of `YYYY-MM-DDTHH:MM:SS` (None if it is no time: the decoder's path says why)."""
        try:
            base = parse_time(second.decode() + ".000")
        except OperatorError:
            return None
        if len(self.seconds) >= 4096:
            self.seconds.clear()
        self.seconds[second] = base
        return base

    def record(self, batch: Batch, out: Output, index: int, data: bytes, now: int) -> None:
        """One record by the JSON decoder: added, or refused with the reason."""
        try:
            time, ticker, price = self.trade(data)
        except OperatorError as error:
            out.reject(index, str(error))
            return
        if self.processing:
            time = now
        elif time is None:
            out.reject(index, f"missing field {json.dumps(self.time_field)}")
            return
        if math.isnan(price) or price < 0:
            out.reject(index, f"field {json.dumps(self.price_field)}: {number(price)} is not a price (a number, 0 or more)")
            return
        if not self.processing and batch.now_ms > 0 and time > batch.now_ms + self.max_ahead_ms:
            out.reject(
                index,
                f"event time {timestamp(time)} is ahead of processing time {timestamp(batch.now_ms)} by more "
                f"than max-ahead ({self.max_ahead_ms} ms): a clock or data error",
            )
            return
        try:
            partly = self.add(ticker, time, price)
        except _Late as late:
            out.reject_late(index, str(late))
            return
        if partly is not None:
            out.report_partly_late(index, partly)
        if not self.processing:
            out.observe_event_time(time)
            if time > self.max_event_time:
                self.max_event_time = time

    def tick(self, now_ms: int, watermark_ms: int, out: Output) -> None:
        to = now_ms if self.processing else _saturating_sub(watermark_ms, self.out_of_orderness_ms)
        self.advance_watermark(to, out)

    def finish(self, now_ms: int, out: Output) -> None:
        self.fire_until(END, out)

    def snapshot(self, out: KeyedStates) -> None:
        out.push(INSTANCE_KEY, codec.encode(FORMAT, [self.max_event_time, self.watermark]))
        for ticker, key in self.keys.items():
            if key.panes:
                closed_through = max(key.last_fired_end, self.watermark)
                panes = [[start, slot[0], slot[1]] for start, slot in sorted(key.panes.items())]
                out.push(ticker, codec.encode(FORMAT, [closed_through, panes]))

    def restore(self, state: KeyedStates) -> None:
        for ticker, data in state:
            if ticker == INSTANCE_KEY:
                max_event_time, watermark = codec.decode(FORMAT, data)
                self.max_event_time = max(self.max_event_time, max_event_time)
                self.watermark = max(self.watermark, watermark)
                continue
            try:
                closed_through, panes = codec.decode(FORMAT, data)
            except OperatorError as error:
                raise OperatorError(f"state of key {json.dumps(ticker)}: {error}") from None
            key = self.keys.setdefault(ticker, Key(ticker))
            if key.panes:
                raise OperatorError(f"state of key {json.dumps(ticker)} was given twice")
            key.panes = {start: [float(top), count] for start, top, count in panes}
            key.last_fired_end = closed_through
        for ticker, key in self.keys.items():
            if key.panes:
                key.timer = self.first_end_containing(min(key.panes), key.last_fired_end)
                heapq.heappush(self.timers, (key.timer, ticker))


class _Late(Exception):
    """A trade every window of which has fired."""


def _time_mode(value: str) -> bool:
    if value not in ("event", "processing"):
        raise ValueError("expected event or processing")
    return value == "processing"


def _field(value: str) -> str:
    if not value:
        raise ValueError("a field name cannot be empty")
    return value


def _no_duplicates(pairs: list, names: tuple) -> dict:
    """An object of `pairs`, refused if one of `names` is among its keys twice."""
    out = dict(pairs)
    if len(out) < len(pairs):
        seen = set()
        for name, _ in pairs:
            if name in names and name in seen:
                raise OperatorError(f"duplicate field {json.dumps(name)}")
            seen.add(name)
    return out


def _layout(time_field: str, ticker_field: str, price_field: str) -> re.Pattern:
    """A trade written as the producer writes it: the three fields in this order, the time with
    milliseconds and no offset, a ticker of printable ASCII without escapes, a price without a
    sign or exponent. Groups: the time to the second, its milliseconds, the ticker, the price."""

    def name(field: str) -> bytes:
        return re.escape(json.dumps(field).encode())

    return re.compile(
        rb"\{" + name(time_field) + rb': ?"(\d{4}-\d\d-\d\dT\d\d:\d\d:[0-5]\d)\.(\d{3})", ?'
        + name(ticker_field) + rb': ?"([\x20\x21\x23-\x5b\x5d-\x7e]{1,64})", ?'
        + name(price_field) + rb": ?((?:0|[1-9]\d{0,15})(?:\.\d{1,17})?)\}"
    )


def _no_constant(name: str) -> float:
    raise OperatorError(f"{name} is not JSON")


_PLAIN = json.JSONDecoder(parse_constant=_no_constant)


def _saturating_sub(a: int, b: int) -> int:
    return max(NEVER, a - b)


Operator = export(SlidingWindowMax)
