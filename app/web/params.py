"""Query parameters and request bodies read defensively: hostile input is a 400, never a 500.

``str.isdigit`` accepts ``²`` and ``int`` refuses it; ``int`` refuses numbers of
over 4,300 digits; a JSON body nested 5,000 deep exhausts the C stack's
recursion limit; a JSON body need not be UTF-8. Each is a PayloadError here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import msgspec

from app.durations import parse_duration
from app.events import PayloadError

MAX_DIGITS = 9


def whole_number(text: str, field: str, low: int, high: int) -> int:
    """``text`` as an int from ``low`` to ``high``; PayloadError naming ``field`` otherwise.

    >>> whole_number("20", "limit", 1, 100)
    20
    """
    if not (text.isascii() and text.isdigit() and len(text) <= MAX_DIGITS):
        raise PayloadError(field, f"expected a whole number from {low} to {high}")
    number = int(text)
    if not low <= number <= high:
        raise PayloadError(field, f"expected a whole number from {low} to {high}")
    return number


def decode_json(raw: bytes | str, field: str) -> Any:
    """``raw`` parsed as JSON; PayloadError naming ``field`` when it is not JSON we accept."""
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError as error:
        raise PayloadError(field, f"not valid JSON: {error}") from None
    except UnicodeDecodeError:
        raise PayloadError(field, "not valid UTF-8") from None
    except RecursionError:
        raise PayloadError(field, "nested too deeply") from None


def check_known(names: Iterable[str], known: frozenset[str]) -> None:
    """PayloadError naming every query parameter not in ``known``: a typo is not ignored.

    ``since=10m`` on a server that did not know ``since`` once returned
    everything, silently (issue 16).
    """
    unknown = sorted(set(names) - known)
    if unknown:
        expected = ", ".join(sorted(known))
        raise PayloadError(", ".join(unknown), f"unknown query parameter (known: {expected})")


def parse_since(text: str, now: float) -> float:
    """``since=`` as a UNIX time: a plain number is one, a duration (``10m``) is that long ago.

    >>> parse_since("1700000000", 0.0), parse_since("10m", 1000.0)
    (1700000000.0, 400.0)
    """
    number = _number(text)
    if number is not None:
        return number
    if text.strip() and not text.strip()[-1].isdigit():
        try:
            return now - parse_duration(text)
        except ValueError:
            pass
    raise PayloadError("since", "expected a duration such as 10m, 2h or 7d, or a UNIX time")


def _number(text: str) -> float | None:
    if not text.isascii() or len(text) > 32:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 and text.strip() == text else None
