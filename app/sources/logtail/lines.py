"""Turning the bytes of a log file into lines (what a line says: :mod:`.logformat`).

Pure code, no I/O: the tailer feeds chunks as they come off the disk.

Deliberate oddities (do not "fix"):
- Lines are split on bytes before decoding, so a multi-byte character cut by a
  chunk boundary is decoded whole; invalid UTF-8 becomes U+FFFD.
- CRLF is one line end (a trailing CR is dropped, even when it arrived in an
  earlier chunk than its LF); a lone CR inside a line is kept.
- A line longer than ``max_line_bytes`` keeps its first bytes (cut on a
  character boundary) plus a visible marker naming how many bytes were cut;
  the rest of that line is counted and skipped, never held in memory.
- ANSI escape sequences (colours, cursor moves, OSC titles) and NUL bytes are
  stripped: a payload carries plain text only, never raw escape codes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

CUT_MARKER = " [… {cut} bytes cut]"

_ANSI = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC: titles, links
    r"|\x1b[ -/]*[0-~]?"  # other escapes, and a stray ESC
)


@dataclass(frozen=True, slots=True)
class RawLine:
    """A complete line as bytes (no line end) and how many bytes of it were cut."""

    data: bytes
    cut: int = 0


@dataclass
class LineSplitter:
    """Splits a byte stream into lines across arbitrary chunk boundaries.

    Holds the unfinished last line (at most ``max_line_bytes`` of it) until its
    newline arrives or :meth:`flush` is called.

    >>> s = LineSplitter()
    >>> s.feed(b"a\\r"), s.feed(b"\\nb"), s.flush()
    ([], [RawLine(data=b'a', cut=0)], RawLine(data=b'b', cut=0))
    """

    max_line_bytes: int = 65536
    _held: bytearray = field(default_factory=bytearray)
    _cut: int = 0
    _cut_ends_cr: bool = False

    @property
    def pending(self) -> bool:
        """True while part of a line is held."""
        return bool(self._held) or self._cut > 0

    def feed(self, chunk: bytes) -> list[RawLine]:
        """Take the next bytes of the stream; return the lines they complete."""
        lines = []
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            self._hold(chunk[start:end])
            lines.append(self._finish(ended=True))
            start = end + 1
        self._hold(chunk[start:])
        return lines

    def flush(self) -> RawLine | None:
        """The held partial line as a line of its own (flush timeout, end of a file)."""
        if not self.pending:
            return None
        return self._finish(ended=False)

    def _hold(self, part: bytes) -> None:
        if not part:
            return
        room = self.max_line_bytes - len(self._held)
        self._held += part[:room]
        if len(part) > room:
            self._cut += len(part) - room
            self._cut_ends_cr = part.endswith(b"\r")

    def _finish(self, *, ended: bool) -> RawLine:
        data, cut = bytes(self._held), self._cut
        if ended and cut and self._cut_ends_cr:
            cut -= 1
        elif ended and data.endswith(b"\r") and not cut:
            data = data[:-1]
        if cut:
            kept = char_boundary(data)
            data, cut = data[:kept], cut + len(data) - kept
        self._held.clear()
        self._cut, self._cut_ends_cr = 0, False
        return RawLine(data, cut)


def char_boundary(data: bytes) -> int:
    """Length of ``data`` without a UTF-8 character cut off at its end."""
    end = len(data)
    for back in range(1, min(4, end) + 1):
        byte = data[end - back]
        if byte & 0xC0 != 0x80:
            return end - back if _utf8_width(byte) > back else end
    return end


def _utf8_width(lead: int) -> int:
    if lead >= 0xF0:
        return 4
    if lead >= 0xE0:
        return 3
    return 2 if lead >= 0xC0 else 1


def line_text(line: RawLine) -> str:
    """The text a payload carries: decoded with replacement, escapes stripped, cut marked."""
    text = strip_ansi(line.data.decode("utf-8", errors="replace"))
    if line.cut:
        text += CUT_MARKER.format(cut=line.cut)
    return text


def strip_ansi(text: str) -> str:
    """``text`` without ANSI escape sequences and NUL bytes."""
    if "\x1b" in text or "\x9b" in text or "\x9d" in text:
        text = _ANSI.sub("", text)
    return text.replace("\x00", "")


def backfill_offset(block: bytes, block_start: int, lines: int) -> int | None:
    """Where the last ``lines`` lines of a file begin, given its last bytes.

    ``block`` is the end of the file, starting at offset ``block_start``. An
    unterminated last line counts as a line. Returns None when the block is too
    short to tell (read a longer one).

    >>> backfill_offset(b"a\\nb\\nc\\n", 0, 2), backfill_offset(b"a\\nb\\nc", 0, 2)
    (2, 2)
    """
    if lines <= 0:
        return block_start + len(block)
    end = len(block) - 1 if block.endswith(b"\n") else len(block)
    for _ in range(lines):
        end = block.rfind(b"\n", 0, end)
        if end < 0:
            return 0 if block_start == 0 else None
    return block_start + end + 1
