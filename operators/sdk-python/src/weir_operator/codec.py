"""Operator state as bytes: a JSON value behind one format version byte, so that a later
version of an operator can tell what an earlier one wrote (live swaps and checkpoints carry
state across versions) and refuse what it cannot read. Python and JavaScript operators share
this encoding, so state moves between them when their formats agree; Rust operators write
postcard, which this refuses by name."""

from __future__ import annotations

import json
from typing import Any

from .errors import OperatorError


def encode(format: int, value: Any) -> bytes:
    """`value` (anything `json.dumps` takes) behind the format byte `format` (0 to 255)."""
    if not 0 <= format <= 255:
        raise OperatorError(f"a state format is a byte (0 to 255), not {format}")
    return bytes((format,)) + json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


def decode(format: int, data: bytes) -> Any:
    """The value `encode` wrote with format `format`. Another format byte, or bytes that are not
    JSON, are an `OperatorError` that says which."""
    if not data:
        raise OperatorError("state is empty (no format byte)")
    if data[0] != format:
        raise OperatorError(f"state format {data[0]} is not known to this version (it reads format {format})")
    try:
        return json.loads(data[1:])
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise OperatorError(
            f"state cannot be read as JSON ({error}); was it written by an operator in another language?"
        ) from None
