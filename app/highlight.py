"""Where a user's RE2 pattern matches a text, for the ``<mark>``s of a search: RE2's engine
called without its Python wrapper.

The google-re2 binding's ``finditer`` costs 5-10 µs a call even on a 40-byte
line, nearly all of it Python in the wrapper (a generator, a match object,
every group's offsets mapped back to characters); the engine's own ``Match``
costs under 1 µs. With 500 distinct ``q=`` patterns each line is highlighted
500 times (issue 18), so the spans are found here with that call: the same
engine on the same pattern, so the same matches in the same linear time (a
user's pattern still cannot stall the process). Capturing groups are turned
off (``never_capture``): a mark needs only the whole match.

Deliberate oddities:
- It relies on ``re2._re2``, the binding's extension module, not its
  documented API; ``tests/test_highlight.py`` compares the spans with
  ``finditer``'s on a table of patterns and texts, so a binding that changes
  it fails there, not in a viewer.
- The engine's form of a pattern is kept per compiled pattern object
  (identity, an LRU of ``KEPT``), which keeps that object alive too: at
  most ``KEPT`` patterns outlive their stream or request, each with the
  memory RE2 gave it (bounded by its ``max_mem``). Beyond ``KEPT`` distinct
  live filters, the engine form is made again per call (slower, not wrong).
- A text that is not valid UTF-8 as Python text (a lone surrogate) raises
  ``UnicodeEncodeError``, as ``finditer`` does.
- Even that call is 1-3 µs, twice per matching line, and 500 engine objects
  in turn miss the CPU caches; Python's ``re`` finds the spans of a short
  ASCII pattern made only of literal alternatives (``error|warn``,
  ``\\bt3\\b``: :func:`literal_alternatives`) in about 1 µs. Only those take
  it, and only on an ASCII text of at most ``FAST_TEXT_MAX`` characters:
  with no group and no repetition the backtracking engine tries each
  alternative once per position (at most ``FAST_PATTERN_MAX`` steps), and on
  ASCII the two engines agree on literals, ``\\b`` and ``(?i)`` (the table in
  the tests checks it). An empty alternative is refused (Python and RE2
  step past an empty match differently), as is everything else: RE2 then.
  The match decision itself is never made here (:mod:`app.filters`, RE2).
"""

from __future__ import annotations

import re
import string
from functools import lru_cache
from typing import Any

import re2
from re2 import _re2

KEPT = 1024  # patterns whose engine form is kept (a stream's filter, a search's page)
FAST_PATTERN_MAX = 64  # characters of a pattern Python's re may take (literal alternatives)
FAST_TEXT_MAX = 4096  # characters of a text it may scan (longer: RE2)
_UNANCHORED = re2._Anchor.UNANCHORED
_META = frozenset("\\|()[]{}.*+?^$")
_PUNCTUATION = frozenset(string.punctuation)


def literal_alternatives(pattern: str) -> bool:
    """True when ``pattern`` is short, ASCII, and only literal alternatives.

    An alternative is printable characters that are not operators, ``\\``
    and a punctuation character, and ``\\b``, with at least one character to
    match; the pattern may start with ``(?i)``.

    >>> [literal_alternatives(p) for p in ("error|warn", r"(?i)\\bt3\\b|a\\.b", "a+", "a|", "(a)")]
    [True, True, False, False, False]
    """
    if len(pattern) > FAST_PATTERN_MAX or not pattern.isascii():
        return False
    body = pattern.removeprefix("(?i)")
    has_character, at = False, 0
    while at < len(body):
        char = body[at]
        if char == "|":
            if not has_character:
                return False
            has_character = False
        elif char == "\\":
            escaped = body[at + 1 : at + 2]
            if escaped != "b" and escaped not in _PUNCTUATION:
                return False
            has_character = has_character or escaped != "b"
            at += 1
        elif char in _META or not char.isprintable():
            return False
        else:
            has_character = True
        at += 1
    return has_character


class Highlighter:
    """One compiled pattern as RE2's engine object, spans only (no capturing groups), and as
    Python's ``re`` too when it is made of literal alternatives."""

    __slots__ = ("_finditer", "_match")

    def __init__(self, pattern: Any) -> None:
        options = re2.Options()
        compiled = pattern.options
        for name in re2.Options.NAMES:
            setattr(options, name, getattr(compiled, name))
        options.never_capture = True
        options.log_errors = False
        text = pattern.pattern
        regexp = _re2.RE2(text.encode() if isinstance(text, str) else text, options)
        if not regexp.ok():  # the pattern compiled with its groups: only a bug gets here
            raise re2.error(regexp.error())
        self._match = regexp.Match
        self._finditer = None
        plain = not (compiled.longest_match or compiled.literal or compiled.posix_syntax)
        if plain and isinstance(text, str) and literal_alternatives(text):
            flags = re.ASCII | (0 if compiled.case_sensitive else re.IGNORECASE)
            self._finditer = re.compile(text, flags).finditer

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Non-empty ``(start, end)`` character spans of the matches, as ``finditer`` finds them."""
        if self._finditer is not None and len(text) <= FAST_TEXT_MAX and text.isascii():
            return [found.span() for found in self._finditer(text)]
        encoded = text.encode()
        match, end, pos = self._match, len(encoded), 0
        found: list[tuple[int, int]] = []
        while True:
            start, stop = match(_UNANCHORED, encoded, pos, end)[0]
            if start < 0:
                break
            if stop > start:
                found.append((start, stop))
            if pos == end:
                break
            if stop == pos:  # an empty match here: step over one character
                pos += 1 if end == len(text) else _re2.CharLenToBytes(encoded, pos, 1)
            else:
                pos = stop
        if not found or end == len(text):  # ASCII: bytes are characters
            return found
        return _characters(encoded, found)


def _characters(encoded: bytes, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Byte spans (in order) of ``encoded`` as character spans."""
    out = []
    byte, char = 0, 0
    for start, stop in spans:
        first = char + _re2.BytesToCharLen(encoded, byte, start)
        char, byte = first + _re2.BytesToCharLen(encoded, start, stop), stop
        out.append((first, char))
    return out


@lru_cache(maxsize=KEPT)
def highlighter(pattern: Any) -> Highlighter:
    """The :class:`Highlighter` of a compiled pattern (kept per pattern object)."""
    return Highlighter(pattern)


def match_spans(text: str, pattern: Any) -> list[tuple[int, int]]:
    """Non-empty ``(start, end)`` spans where ``pattern`` (compiled RE2, or None) matches ``text``.

    >>> import re2
    >>> match_spans("café au lait", re2.compile("au|l"))
    [(5, 7), (8, 9)]
    """
    if pattern is None:
        return []
    return highlighter(pattern).spans(text)
