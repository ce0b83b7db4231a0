"""The stream's ``q=`` and ``level=`` filters.

User-supplied patterns run on RE2 (linear time), so ``(a+)+$`` cannot stall
the process; the pattern length is capped too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import re2

from app.events import LEVEL_ORDER, Event, KindRegistry, PayloadError

MAX_PATTERN_LENGTH = 512


def compile_user_regex(text: str, *, field: str = "q") -> Any:
    """Compile a user's regex on RE2; a bad or oversized one is a PayloadError naming ``field``."""
    if len(text) > MAX_PATTERN_LENGTH:
        raise PayloadError(field, f"longer than {MAX_PATTERN_LENGTH} characters")
    try:
        return re2.compile(text)
    except re2.error as error:
        raise PayloadError(field, f"not a valid regular expression: {error}") from None


def parse_level(text: str, *, field: str = "level") -> str:
    """Normalise a level name (``warning`` is ``warn``); anything else is a PayloadError."""
    level = {"warning": "warn", "err": "error"}.get(text.lower(), text.lower())
    if level not in LEVEL_ORDER:
        raise PayloadError(field, f"expected one of {', '.join(LEVEL_ORDER)}, got {text!r}")
    return level


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Keeps events whose text matches ``pattern`` and whose level is at least ``level``.

    Kinds without a level (chat, ticker) pass the level filter: it narrows logs
    and notifications, it does not hide other panels.
    """

    kinds: KindRegistry
    pattern: Any = None
    level: str | None = None

    @property
    def active(self) -> bool:
        """False when nothing is filtered (the hot path skips the filter then)."""
        return self.pattern is not None or self.level is not None

    def accepts(self, event: Event) -> bool:
        """True when ``event`` passes both filters."""
        kind = self.kinds.get(event.kind)
        if self.level is not None and kind.level is not None:
            level = kind.level(event.data)
            if level is None or LEVEL_ORDER[level] < LEVEL_ORDER[self.level]:
                return False
        return self.pattern is None or self.pattern.search(kind.text(event.data)) is not None
