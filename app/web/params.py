"""Query parameters and request bodies read defensively: hostile input is a 400, never a 500.

``str.isdigit`` accepts ``²`` and ``int`` refuses it; ``int`` refuses numbers of
over 4,300 digits; a JSON body nested 5,000 deep exhausts the C stack's
recursion limit; a JSON body need not be UTF-8. Each is a PayloadError here.
"""

from __future__ import annotations

from typing import Any

import msgspec

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
