"""The stream's ``q=``, ``level=`` and ``field=`` filters.

User-supplied patterns run on RE2 (linear time), so ``(a+)+$`` cannot stall
the process; the pattern length is capped too. A pattern RE2 refuses is
explained in words (:func:`regex_problem`), and RE2 is told not to log it: a
user's typo is not a server error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import re2

from app.events import LEVEL_ORDER, Event, KindRegistry, PayloadError
from app.linefields import has_fields

MAX_PATTERN_LENGTH = 512
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False
# RE2's own words for a problem -> what it means for someone typing a filter
_PROBLEMS = {
    "missing )": "a ( is never closed (write \\( to match a parenthesis)",
    "unexpected )": "a ) closes nothing (write \\) to match a parenthesis)",
    "missing ]": "a [ is never closed (write \\[ to match a bracket)",
    "bad repetition operator": "*, + or ? repeats another repetition",
    "no argument for repetition operator": "*, + or ? has nothing before it to repeat",
    "invalid repetition size": "a {n,m} count is reversed or above 1000",
    "trailing \\": "the filter ends with a lone \\ (write \\\\ to match a backslash)",
    "invalid escape sequence": "RE2 has no such escape (and no back-references like \\1)",
    "invalid perl operator": "RE2 has no look-ahead, look-behind or that (? group",
    "invalid named capture group": "a (?P<name> group is malformed",
    "invalid character class range": "a character range like z-a is reversed or unknown",
    "invalid character class": "a character class is malformed",
    "invalid UTF-8": "the filter is not valid UTF-8",
    "pattern too large - compile failed": "the filter is too large for RE2",
}


def compile_user_regex(text: str, *, field: str = "q") -> Any:
    """Compile a user's regex on RE2; a bad or oversized one is a PayloadError naming ``field``."""
    if len(text) > MAX_PATTERN_LENGTH:
        raise PayloadError(field, f"longer than {MAX_PATTERN_LENGTH} characters")
    try:
        return re2.compile(text, _RE2_OPTIONS)
    except re2.error as error:
        raise PayloadError(field, regex_problem(error)) from None


def regex_problem(error: Exception) -> str:
    """RE2's complaint about a pattern, in words, without Python's bytes repr.

    >>> import re2
    >>> try:
    ...     re2.compile("foo((", _RE2_OPTIONS)
    ... except re2.error as error:
    ...     print(regex_problem(error))
    missing ) in the filter: foo(( - a ( is never closed (write \\( to match a parenthesis)
    """
    raw = error.args[0] if error.args else ""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    what, _, where = text.partition(": ")
    meaning = _PROBLEMS.get(what)
    if not where:
        return f"{what} in the filter" + (f" - {meaning}" if meaning else "")
    return f"{what} in the filter: {where}" + (f" - {meaning}" if meaning else "")


def parse_level(text: str, *, field: str = "level") -> str:
    """Normalise a level name (``warning`` is ``warn``); anything else is a PayloadError."""
    level = {"warning": "warn", "err": "error"}.get(text.lower(), text.lower())
    if level not in LEVEL_ORDER:
        raise PayloadError(field, f"expected one of {', '.join(LEVEL_ORDER)}, got {text!r}")
    return level


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Keeps events whose text matches ``pattern``, whose level is at least ``level`` and
    whose text, a JSON or logfmt line, has every (name, value) of ``fields``.

    Kinds without a level (chat, ticker) pass the level filter: it narrows logs
    and notifications, it does not hide other panels. A field filter keeps only
    structured lines (app/linefields.py): plain text has no fields to match.
    """

    kinds: KindRegistry
    pattern: Any = None
    level: str | None = None
    fields: tuple[tuple[str, str], ...] = ()

    @property
    def active(self) -> bool:
        """False when nothing is filtered (the hot path skips the filter then)."""
        return self.pattern is not None or self.level is not None or bool(self.fields)

    def accepts(self, event: Event) -> bool:
        """True when ``event`` passes both filters."""
        kind = self.kinds.get(event.kind)
        if self.level is not None and kind.level is not None:
            level = kind.level(event.data)
            if level is None or LEVEL_ORDER[level] < LEVEL_ORDER[self.level]:
                return False
        text = kind.text(event.data)
        if self.fields and not has_fields(text, self.fields):
            return False
        return self.pattern is None or self.pattern.search(text) is not None
