"""An operator's `key=value` settings, as `weir run --operator-setting` gives them."""

from __future__ import annotations

from typing import Callable, Iterable, TypeVar

from .errors import OperatorError

T = TypeVar("T")


class Settings:
    """The settings of one instance. A key given twice takes its last value."""

    __slots__ = ("_pairs", "_values")

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._pairs = [(str(k), str(v)) for k, v in pairs]
        self._values = dict(self._pairs)

    @classmethod
    def of(cls, settings: "Settings | dict[str, str] | Iterable[tuple[str, str]]") -> "Settings":
        """Settings from a `Settings`, a dict, or `(key, value)` pairs."""
        if isinstance(settings, Settings):
            return settings
        if isinstance(settings, dict):
            return cls(settings.items())
        return cls(settings)

    def get(self, key: str) -> str | None:
        """The value of `key`, if given."""
        return self._values.get(key)

    def parse_or(self, key: str, default: T, parse: Callable[[str], T], expected: str) -> T:
        """The value of `key` read by `parse`, or `default` if not given. A value `parse` refuses
        (by raising) is an `OperatorError` naming the setting, its value and `expected`."""
        value = self._values.get(key)
        if value is None:
            return default
        try:
            return parse(value)
        except Exception as error:  # noqa: BLE001 - any refusal of the parser is a bad value
            raise OperatorError(f"setting {key}={value!r}: expected {expected} ({error})") from None

    def check_known(self, known: Iterable[str]) -> None:
        """Refuse any key not in `known`, naming it and the keys accepted."""
        known = list(known)
        for key, _ in self._pairs:
            if key not in known:
                accepted = ", ".join(known) if known else "none"
                raise OperatorError(f"unknown setting {key!r} (accepted: {accepted})")

    def pairs(self) -> list[tuple[str, str]]:
        """The pairs as given."""
        return list(self._pairs)
