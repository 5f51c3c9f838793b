"""The one error type an operator raises on purpose, and how any exception reads in one line."""

from __future__ import annotations

import traceback


class OperatorError(Exception):
    """Something the operator refuses, in words a person can act on: a bad setting in
    `__init__`, a record a map function will not take, state `restore` cannot read."""


def one_line(error: BaseException) -> str:
    """`error` as the host reports it: an `OperatorError`'s own message, any other exception as
    the last line of its traceback (`KeyError: 'PRICE'`)."""
    if isinstance(error, OperatorError):
        return str(error)
    return "".join(traceback.format_exception_only(type(error), error)).strip().replace("\n", " ")
