"""Errors shared across the package, and the wording of errors that name a bad value."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["did_you_mean", "UnsupportedFormat"]


def did_you_mean(value: object, choices: Iterable[str], cutoff: float = 0.6) -> str:
    """' (did you mean 'x'?)' for the closest choice, or '' when none is close."""
    hint = difflib.get_close_matches(str(value), list(choices), n=1, cutoff=cutoff)
    return f" (did you mean {hint[0]!r}?)" if hint else ""


class UnsupportedFormat(ValueError):
    """A cost model does not cover a format (e.g. the MAC model and powers of two): the cost is
    absent for that plan, not wrong."""
