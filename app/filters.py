"""The stream's ``q=``, ``level=`` and ``field=`` filters.

User-supplied patterns run on RE2 (linear time), so ``(a+)+$`` cannot stall
the process; the pattern length is capped too. A pattern RE2 refuses is
explained in words (:func:`regex_problem`), and RE2 is told not to log it: a
user's typo is not a server error.

Streams with the same filter share one :class:`SharedFilter`: a line is
matched (and its frame encoded) once per distinct filter, not once per
viewer; and every distinct pattern is in one RE2 set (:class:`PatternSet`),
so a line is scanned once for all of them (issue 18): one search through
the RE2 binding costs about 9 µs, the set's scan for 500 patterns about 1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import re2

from app.events import LEVEL_ORDER, Event, KindRegistry, PayloadError
from app.linefields import has_fields

MAX_PATTERN_LENGTH = 512
IGNORE_CASE = "ignore_case"  # the query parameter beside q= (the viewer's checkbox)


def _options(*, case_sensitive: bool) -> Any:
    options = re2.Options()
    options.log_errors = False
    options.case_sensitive = case_sensitive
    return options


_RE2_OPTIONS = _options(case_sensitive=True)
_RE2_IGNORE_CASE = _options(case_sensitive=False)
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


def compile_user_regex(text: str, *, field: str = "q", ignore_case: bool = False) -> Any:
    """Compile a user's regex on RE2; a bad or oversized one is a PayloadError naming ``field``.

    ``ignore_case`` is RE2's own option (the pattern is not rewritten with ``(?i)``),
    so a pattern that sets ``(?-i)`` for a part still means what it says.
    """
    if len(text) > MAX_PATTERN_LENGTH:
        raise PayloadError(field, f"longer than {MAX_PATTERN_LENGTH} characters")
    try:
        return re2.compile(text, _RE2_IGNORE_CASE if ignore_case else _RE2_OPTIONS)
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


def parse_flag(text: str, *, field: str = IGNORE_CASE) -> bool:
    """A checkbox-like parameter: ``1``/``true``/``yes``/``on`` or ``0``/``false``/``no``/empty.

    >>> parse_flag("1"), parse_flag(""), parse_flag("on")
    (True, False, True)
    """
    word = text.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("", "0", "false", "no", "off"):
        return False
    raise PayloadError(field, f"expected 1 or 0, got {text[:40]!r}")


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
    key: str | None = field(init=False, default=None, compare=False, repr=False)
    """The pattern's :func:`pattern_key`, worked out once (asking RE2 its options is a call)."""

    def __post_init__(self) -> None:
        if self.pattern is not None:
            object.__setattr__(self, "key", pattern_key(self.pattern))

    @property
    def active(self) -> bool:
        """False when nothing is filtered (the hot path skips the filter then)."""
        return self.pattern is not None or self.level is not None or bool(self.fields)

    def accepts(self, event: Event, patterns: PatternSet | None = None) -> bool:
        """True when ``event`` passes both filters (``patterns``: the set holding this pattern)."""
        kind = self.kinds.get(event.kind)
        if self.level is not None and kind.level is not None:
            level = kind.level(event.data)
            if level is None or LEVEL_ORDER[level] < LEVEL_ORDER[self.level]:
                return False
        if self.pattern is None and not self.fields:
            return True
        text = kind.text(event.data)
        if self.fields and not has_fields(text, self.fields):
            return False
        if self.pattern is None:
            return True
        if patterns is not None and self.key is not None:
            matched = patterns.matches(self.key, event, text)
            if matched is not None:
                return matched
        return self.pattern.search(text) is not None


FilterKey = tuple[str, str | None, str | None, tuple[tuple[str, str], ...]]
"""What makes two streams' filtered frames the same: format, pattern, level, fields."""


def filter_key(format_name: str, event_filter: EventFilter) -> FilterKey:
    """The key streams sharing ``event_filter``'s frames in ``format_name`` have in common."""
    return (format_name, event_filter.key, event_filter.level, tuple(event_filter.fields))


def pattern_key(pattern: Any) -> str:
    """A compiled pattern as one text that means the same alone or in a :class:`PatternSet`.

    ``ignore_case`` is RE2's option on the compiled pattern; in the set (compiled
    case-sensitive) the same is spelt with a leading ``(?i)``.

    >>> pattern_key(compile_user_regex("Abc", ignore_case=True))
    '(?i)Abc'
    """
    text = str(pattern.pattern)
    return text if pattern.options.case_sensitive else "(?i)" + text


class PatternSet:
    """Every pattern of the open filters in one RE2 set, scanned once per event.

    Compiled again, lazily (at the next event), when a pattern joins; patterns
    whose filters have all gone are dropped then too.
    """

    __slots__ = ("_compiled", "_dirty", "_kept", "_known", "_live", "_patterns")

    def __init__(self, live: Callable[[], Iterable[str]]) -> None:
        self._live = live  # the pattern texts in use now
        self._patterns: list[str] = []
        self._known: frozenset[str] = frozenset()
        self._compiled: Any = None
        self._dirty = False
        self._kept: tuple[Event | None, str, frozenset[str]] = (None, "", frozenset())

    def stale(self) -> None:
        """A pattern joined: compile the set again at the next event."""
        self._dirty = True

    def matches(self, pattern: str, event: Event, text: str) -> bool | None:
        """Whether ``pattern`` matches ``text`` (``event``'s); None when the set cannot tell."""
        kept_event, kept_text, matched = self._kept
        if kept_event is not event or kept_text != text:
            if self._dirty:
                self._compile()
            if self._compiled is None:
                return None
            found = self._compiled.Match(text) or ()
            matched = frozenset(self._patterns[index] for index in found)
            self._kept = (event, text, matched)
        if pattern in matched:
            return True
        return False if pattern in self._known else None

    def _compile(self) -> None:
        self._dirty = False
        patterns = sorted(set(self._live()))
        compiled = re2.Set.SearchSet(_RE2_OPTIONS)
        try:
            for pattern in patterns:
                compiled.Add(pattern)
            compiled.Compile()
        except re2.error:  # too large together (RE2 max_mem): each searches alone
            self._compiled, self._patterns, self._known = None, [], frozenset()
            return
        self._compiled, self._patterns, self._known = compiled, patterns, frozenset(patterns)


class SharedFilter:
    """One filter and its format's encoder, evaluated once per event for every stream using it.

    :meth:`frame` is the event's frame when the filter keeps it, ``b""`` when not;
    the answers for the newest ``KEPT`` events are kept, so streams that read
    the same events (the hub's fan-out, or a batch each) ask the filter once.
    Few: 500 distinct all-matching filters keep 500 x KEPT highlighted frames.
    They are kept in a ring by offset (a list store per event, no eviction):
    events of several channels may take each other's place, then are asked again.
    """

    KEPT = 16
    __slots__ = ("__weakref__", "_encode", "_kept", "_patterns", "filter")

    def __init__(
        self,
        event_filter: EventFilter,
        encode: Callable[[Event], bytes],
        patterns: PatternSet | None = None,
    ) -> None:
        self.filter = event_filter
        self._encode = encode
        self._patterns = patterns
        self._kept: list[tuple[Event | None, bytes]] = [(None, b"")] * self.KEPT

    def frame(self, event: Event) -> bytes:
        """``event``'s frame if the filter keeps it, else ``b""``."""
        slot = event.offset % self.KEPT
        kept, frame = self._kept[slot]
        if kept is event:  # the hub's fan-out: each of the filter's streams asks in turn
            return frame
        frame = self._encode(event) if self.filter.accepts(event, self._patterns) else b""
        self._kept[slot] = (event, frame)
        return frame
