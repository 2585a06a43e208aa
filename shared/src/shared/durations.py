"""Plain-string durations (``24h``, ``30m``, ``7d``, ``10s``, ``1h30m``) used by
settings and policy files, so tests can run a whole episode in seconds."""

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}


def parse_duration(text: str) -> timedelta:
    """Parse ``"24h"``, ``"1h30m"`` or ``"0s"`` into a timedelta.

    Raises:
        ValueError: the text is empty, has an unknown unit or anything left over.
    """
    compact = text.strip().replace(" ", "")
    if not compact:
        raise ValueError("empty duration; write e.g. '24h', '30m', '7d', '10s'")
    total = timedelta()
    position = 0
    for match in _PART.finditer(compact):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position != len(compact):
        raise ValueError(
            f"invalid duration {text!r}; write e.g. '24h', '30m', '7d', '10s', '1h30m'"
        )
    return total


def format_duration(delta: timedelta) -> str:
    """The shortest exact plain-string form of a duration (inverse of parse)."""
    millis = round(delta.total_seconds() * 1000)
    if millis == 0:
        return "0s"
    parts = []
    for unit in ("d", "h", "m", "s", "ms"):
        size = round(_UNITS[unit].total_seconds() * 1000)
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _coerce(value: object) -> object:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    return value


Duration = Annotated[
    timedelta,
    BeforeValidator(_coerce),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
"""A pydantic type that accepts ``"24h"`` style strings or seconds."""
