"""The ``format=ndjson`` stream's wire format: one JSON object per line. Pure functions.

For programs without an SSE parser (``curl | jq``, a log shipper): each line
is the object a ``format=json`` stream carries in ``data:``
(``{"id", "channel", "kind", "time", "data"}``); a gap is the line
``{"channel": "gap", "kind": "gap", "data": {"channels": [...]}}``, the SSE
``event: gap`` frame's name and data; a heartbeat is an empty line. JSON
encoders escape every line end inside strings, so no payload can split a line.
"""

from __future__ import annotations

import msgspec

CONTENT_TYPE = b"application/x-ndjson"
HEARTBEAT = b"\n"
_encode = msgspec.json.Encoder().encode


def encode_line(json_body: bytes) -> bytes:
    """One event's line, from its one-line JSON body."""
    return json_body + b"\n"


def encode_gap(channels: list[str], cursor: str | None = None) -> bytes:
    """The line telling a client that history after its cursor is lost on ``channels``.

    ``cursor`` (the id to resume from after the replay that follows) leads the line,
    as ``id`` leads an event's.

    >>> encode_gap(["log.app"], "3f9a-7")
    b'{"id":"3f9a-7","channel":"gap","kind":"gap","data":{"channels":["log.app"]}}\\n'
    """
    line: dict[str, object] = {"id": cursor} if cursor is not None else {}
    line |= {"channel": "gap", "kind": "gap", "data": {"channels": channels}}
    return _encode(line) + b"\n"
