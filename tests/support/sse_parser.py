"""A spec-compliant, incremental Server-Sent Events parser (WHATWG HTML, 9.2.6), for tests."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ParsedEvent:
    """One dispatched event, or a comment/retry seen on the wire."""

    event: str = "message"
    data: str = ""
    id: str = ""


@dataclass
class SSEParser:
    """Feed bytes in any chunking; collect dispatched events, comments and retry values."""

    events: list[ParsedEvent] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    retry: int | None = None
    last_event_id: str = ""
    _buffer: str = ""
    _pending_cr: bool = False
    _data: list[str] = field(default_factory=list)
    _event: str = ""
    _decoder_tail: bytes = b""

    def feed(self, chunk: bytes) -> list[ParsedEvent]:
        """Parse ``chunk``; return the events it completed."""
        raw = self._decoder_tail + chunk
        text, self._decoder_tail = _decode_utf8_prefix(raw)
        before = len(self.events)
        for char in text:
            self._feed_char(char)
        return self.events[before:]

    def _feed_char(self, char: str) -> None:
        if self._pending_cr:
            self._pending_cr = False
            if char == "\n":
                return
        if char == "\r":
            self._pending_cr = True
            self._line(self._buffer)
            self._buffer = ""
        elif char == "\n":
            self._line(self._buffer)
            self._buffer = ""
        else:
            self._buffer += char

    def _line(self, line: str) -> None:
        if line == "":
            self._dispatch()
            return
        if line.startswith(":"):
            self.comments.append(line[1:].removeprefix(" "))
            return
        name, colon, value = line.partition(":")
        if colon:
            value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self.last_event_id = value
        elif name == "retry" and value.isdigit():
            self.retry = int(value)

    def _dispatch(self) -> None:
        if not self._data:
            self._event = ""
            return
        event = ParsedEvent(self._event or "message", "\n".join(self._data), self.last_event_id)
        self.events.append(event)
        self._data = []
        self._event = ""


def _decode_utf8_prefix(raw: bytes) -> tuple[str, bytes]:
    """Decode as much of ``raw`` as forms complete UTF-8; return the rest for later."""
    for cut in range(len(raw), max(len(raw) - 4, -1), -1):
        try:
            return raw[:cut].decode(), raw[cut:]
        except UnicodeDecodeError:
            continue
    return raw.decode(errors="replace"), b""
