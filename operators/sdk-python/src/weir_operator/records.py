"""The contract's data in Python: a batch of records as the host packed it, the output an
operator gives back, and keyed state. Packing and unpacking happen here, once: a batch is read
from its packed columns without copying them, an output is appended to one buffer."""

from __future__ import annotations

from functools import partial
from itertools import accumulate, count, repeat
from operator import add, getitem, sub
from typing import Iterator, NamedTuple

#: The watermark before any event time was seen (the smallest 64-bit integer).
NO_WATERMARK = -(2**63)

#: The key of instance-wide state (such as a watermark): the host gives every instance a copy.
INSTANCE_KEY = ""

#: The tag of a rejection that refuses a record as late (every window it belongs to fired).
LATE = "late: "

#: The tag of a rejection that reports a kept record some of whose windows fired without it.
PARTLY_LATE = "partly late: "


def _pairs(packed: bytes | bytearray, key_lens: list[int], value_lens: list[int]) -> Iterator[tuple[str, bytes]]:
    """`(key, value)` pairs out of packed bytes and their two length lists."""
    view, at = memoryview(packed), 0
    for key_len, value_len in zip(key_lens, value_lens):
        key_end = at + key_len
        yield str(view[at:key_end], "utf-8"), bytes(view[key_end : key_end + value_len])
        at = key_end + value_len


class Record(NamedTuple):
    """One input record."""

    #: Its position in the batch, which `Output.reject` names.
    index: int
    #: Its partition key.
    partition_key: str
    #: Its data (a `bytes`, as `json.loads` takes it).
    data: bytes
    #: When the source received it, ms since the Unix epoch.
    arrival_time_ms: int


class Batch:
    """Records of one shard, in order, with the host's processing time and watermark."""

    __slots__ = ("shard_id", "now_ms", "watermark_ms", "_bytes", "_key_lens", "_data_lens", "_arrivals")

    def __init__(
        self,
        shard_id: str,
        now_ms: int,
        watermark_ms: int,
        packed: bytes,
        key_lens: list[int],
        data_lens: list[int],
        arrival_times_ms: list[int],
    ) -> None:
        if not len(key_lens) == len(data_lens) == len(arrival_times_ms):
            raise ValueError("a batch needs one key length, data length and arrival time per record")
        if sum(key_lens) + sum(data_lens) != len(packed):
            raise ValueError(f"the lengths add up to {sum(key_lens) + sum(data_lens)} bytes, the batch has {len(packed)}")
        self.shard_id = shard_id
        self.now_ms = now_ms
        self.watermark_ms = watermark_ms
        self._bytes = packed
        self._key_lens = key_lens
        self._data_lens = data_lens
        self._arrivals = arrival_times_ms

    def __len__(self) -> int:
        return len(self._key_lens)

    @property
    def packed(self) -> bytes:
        """Every record's partition key and data, back to back, as the host sent them."""
        return self._bytes

    def data_spans(self) -> Iterator[tuple[int, int, int]]:
        """`(index, start, end)` of each record: its data is `packed[start:end]`. For reading
        records in place, without a `bytes` each (`re.Pattern.fullmatch(packed, start, end)`)."""
        starts, ends = self._data_bounds()
        return zip(count(), starts, ends)

    def records(self) -> Iterator[Record]:
        """The records in order. Keys are decoded from the packed bytes; each data is one slice
        of them."""
        # No Python code per record (a generator took 750 ns a record against 620-680 ns).
        packed, (starts, ends) = self._bytes, self._data_bounds()
        key_bytes = map(getitem, repeat(packed), map(slice, map(sub, starts, self._key_lens), starts))
        keys = map(str, key_bytes, repeat("utf-8"))
        datas = map(getitem, repeat(packed), map(slice, starts, ends))
        return map(_new_record, zip(count(), keys, datas, self._arrivals))

    def _data_bounds(self) -> tuple[list[int], list[int]]:
        """Where each record's data starts and ends in the packed bytes, computed by C
        iterators (no Python frame per record)."""
        ends = list(accumulate(map(add, self._key_lens, self._data_lens)))
        return list(map(sub, ends, self._data_lens)), ends


#: A `Record` of a 4-tuple, in C (`Record(...)` runs a Python `__new__`).
_new_record = partial(tuple.__new__, Record)


class Output:
    """What one call produced: records (partition key and data, packed as they are emitted),
    rejected input records with their reasons, and the latest event time accepted."""

    __slots__ = ("_bytes", "key_lens", "data_lens", "rejected", "event_time_ms")

    def __init__(self) -> None:
        self._bytes = bytearray()
        self.key_lens: list[int] = []
        self.data_lens: list[int] = []
        #: `(index, reason)` of each input record refused.
        self.rejected: list[tuple[int, str]] = []
        #: The latest event time reported with `observe_event_time` (None: none).
        self.event_time_ms: int | None = None

    def emit(self, partition_key: str, data: bytes | bytearray | str) -> None:
        """Emit a record with this partition key and data (a `str` is written as UTF-8)."""
        key = partition_key.encode()
        if isinstance(data, str):
            data = data.encode()
        self._bytes += key
        self._bytes += data
        self.key_lens.append(len(key))
        self.data_lens.append(len(data))

    def reject(self, index: int, reason: str) -> None:
        """Refuse input record `index` of the current batch: the host sends it to the
        dead-letter destination with `reason`, in words a person can act on."""
        self.rejected.append((index, reason))

    def reject_late(self, index: int, reason: str) -> None:
        """Refuse input record `index` as late (every window it belongs to was emitted)."""
        self.rejected.append((index, LATE + reason))

    def report_partly_late(self, index: int, reason: str) -> None:
        """Report input record `index`, which was kept, as partly late: some of its windows were
        emitted without it (`reason` names them)."""
        self.rejected.append((index, PARTLY_LATE + reason))

    def observe_event_time(self, time_ms: int) -> None:
        """An input record with event time `time_ms` was accepted: the host folds the latest
        into the watermark of the batch's shard."""
        if self.event_time_ms is None or time_ms > self.event_time_ms:
            self.event_time_ms = time_ms

    def __len__(self) -> int:
        return len(self.key_lens)

    def packed(self) -> bytes:
        """The records' keys and data back to back, as the contract carries them."""
        return bytes(self._bytes)

    def records(self) -> list[tuple[str, bytes]]:
        """The output records as `(partition key, data)`, in order."""
        return list(_pairs(self._bytes, self.key_lens, self.data_lens))

    def extend(self, other: Output) -> None:
        """Append all of `other`'s records and rejections (and its event time)."""
        self._bytes += other._bytes
        self.key_lens += other.key_lens
        self.data_lens += other.data_lens
        self.rejected += other.rejected
        if other.event_time_ms is not None:
            self.observe_event_time(other.event_time_ms)


class KeyedStates:
    """An operator's state, one entry per grouping key, each a `bytes` in a format of the
    operator's choice (see `weir_operator.codec`). The entry of `INSTANCE_KEY` is
    instance-wide: `restore` may see several (from instances of another parallelism)."""

    __slots__ = ("_bytes", "key_lens", "state_lens")

    def __init__(self, packed: bytes = b"", key_lens: list[int] | None = None, state_lens: list[int] | None = None):
        key_lens, state_lens = key_lens or [], state_lens or []
        if len(key_lens) != len(state_lens) or sum(key_lens) + sum(state_lens) != len(packed):
            raise ValueError("keyed state whose lengths do not match its bytes")
        self._bytes = bytearray(packed)
        self.key_lens = list(key_lens)
        self.state_lens = list(state_lens)

    def push(self, key: str, state: bytes | bytearray) -> None:
        """Add the state of one key."""
        encoded = key.encode()
        self._bytes += encoded
        self._bytes += state
        self.key_lens.append(len(encoded))
        self.state_lens.append(len(state))

    def __len__(self) -> int:
        return len(self.key_lens)

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        """`(key, state)` of each entry, in order."""
        return _pairs(self._bytes, self.key_lens, self.state_lens)

    def packed(self) -> bytes:
        """The entries' keys and states back to back, as the contract carries them."""
        return bytes(self._bytes)

    def sorted(self) -> KeyedStates:
        """The same entries sorted by key (stable), as the harness returns a snapshot."""
        out = KeyedStates()
        for key, state in sorted(self, key=lambda entry: entry[0]):
            out.push(key, state)
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeyedStates) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"KeyedStates({list(self)!r})"
