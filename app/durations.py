"""Durations as people write them in a config: ``"45s"``, ``"30m"``, ``"12h"``, ``"7d"``.

A plain number (``90``, ``1.5``, ``"90"``) is seconds. Pure: settings call it
to validate keys such as ``auth.session_ttl`` and name the key on error.
"""

from __future__ import annotations

import math
import re

UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<unit>[smhd]?)")


def parse_duration(text: str | float) -> float:
    """Seconds in ``text``; ValueError for anything else (negative, empty, unknown unit).

    >>> parse_duration("12h"), parse_duration("45s"), parse_duration(90)
    (43200.0, 45.0, 90.0)
    """
    if isinstance(text, bool):
        raise ValueError(f"expected a duration such as '45s', '30m', '12h' or '7d', got {text!r}")
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        match = _DURATION.fullmatch(text.strip())
        if match is None:
            raise ValueError(
                f"expected a duration such as '45s', '30m', '12h' or '7d', got {text!r}"
            )
        seconds = float(match["number"]) * UNIT_S[match["unit"] or "s"]
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"expected a duration of 0 or more seconds, got {text!r}")
    return seconds
