"""Server-Sent Events wire encoding: pure functions, no I/O.

A frame is ``id:``, ``event:`` and one ``data:`` line per line of the body,
ended by a blank line. Bodies are split on every line end the SSE spec knows
(CRLF, CR, LF), so no payload can end a field early or forge a frame; ids and
event names must not contain line ends at all (they are refused, not split).
"""

from __future__ import annotations

import re

_LINE_END = re.compile(r"\r\n|\r|\n")


class FieldError(ValueError):
    """An id or event name that would break the frame."""


def _check_field(name: str, value: str) -> str:
    if "\r" in value or "\n" in value or "\0" in value:
        raise FieldError(f"SSE {name} must not contain CR, LF or NUL: {value!r}")
    return value


def encode_event(data: str, *, event: str | None = None, id: str | None = None) -> bytes:
    """Encode one event.

    >>> encode_event("a\\nb", event="chat.lobby", id="x-1")
    b'id: x-1\\nevent: chat.lobby\\ndata: a\\ndata: b\\n\\n'
    """
    parts: list[str] = []
    if id is not None:
        parts.append(f"id: {_check_field('id', id)}\n")
    if event is not None:
        parts.append(f"event: {_check_field('event', event)}\n")
    if "\n" not in data and "\r" not in data:  # one line: most rows (two C scans, no split)
        return f"{''.join(parts)}data: {data}\n\n".encode()
    for line in _LINE_END.split(data):
        parts.append(f"data: {line}\n")
    parts.append("\n")
    return "".join(parts).encode()


def encode_data(text: str) -> bytes:
    """``text`` as a piece of one ``data:`` field: its line ends start new ``data:`` lines.

    Pieces joined after ``data: `` make one frame's body, as if encoded whole
    (:func:`encode_joined`): a piece can be encoded once and sent in many frames.

    >>> encode_data("a\\nb")
    b'a\\ndata: b'
    """
    if "\n" not in text and "\r" not in text:
        return text.encode()
    return "\ndata: ".join(_LINE_END.split(text)).encode()


def encode_joined(pieces: list[bytes], *, event: str, id: str) -> bytes:
    """One frame whose body is ``pieces`` (each from :func:`encode_data`) one after another.

    >>> encode_joined([b"a", b"b\\ndata: c"], event="log.app", id="x-2")
    b'id: x-2\\nevent: log.app\\ndata: ab\\ndata: c\\n\\n'
    """
    start = f"id: {_check_field('id', id)}\nevent: {_check_field('event', event)}\ndata: "
    return b"".join([start.encode(), *pieces, b"\n\n"])


def encode_retry(retry_ms: int) -> bytes:
    """Tell the client how long to wait before reconnecting.

    No blank line of its own: the field joins the next message, so clients
    that yield a message per blank line (httpx-sse, its issue #35) get no empty one.
    """
    return f"retry: {int(retry_ms)}\n".encode()


def encode_comment(text: str = "") -> bytes:
    """A comment line (``: ping``): keeps proxies and idle timers from closing the stream.

    Like ``retry:``, no blank line of its own (a comment is no message).
    """
    lines = _LINE_END.split(text)
    return "".join(f": {line}\n" for line in lines).encode()


def encode_json_event(json_body: bytes, *, event: str, id: str) -> bytes:
    """Encode a one-line JSON body without re-splitting it.

    JSON encoders escape every control character inside strings, so the body
    holds no CR or LF and needs exactly one ``data:`` line; ``event`` and
    ``id`` must already be valid (channel names and broker ids are).
    """
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (id.encode(), event.encode(), json_body)
