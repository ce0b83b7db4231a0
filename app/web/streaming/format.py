"""How one stream format writes what a stream sends: the format seam.

A format is one small object: the response start, the opening bytes, and how
to encode an event, a snapshot, a gap, a heartbeat, the ``retry:`` told at
shutdown and (html) the connection-status fragment. The loop
(:mod:`app.web.streaming.loop`) only asks; adding a format is one class here
and one entry in :func:`stream_format`.

Deliberate oddities:
- ``event`` is also what the hub calls while it fans an event out to parked
  streams (on the publisher's task), so it never raises: frames come from
  :mod:`app.frames`, cached on the event per format (filtered html marks
  its pattern in the row the renderer drew once; the hub hands a filtered
  stream its :class:`~app.filters.SharedFilter`'s frames, not these).
- ``shared`` says whether an event's frame is the same for every subscriber of
  the format: only then may the hub deliver it straight to the socket.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Protocol

import msgspec

from app import ndjson, sse
from app.events import Event
from app.frames import HtmlFrames, concatenated, json_frame, ndjson_frame
from app.render import Renderer

STREAM_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
STREAM_START = {"type": "http.response.start", "status": 200, "headers": STREAM_HEADERS}
NDJSON_HEADERS = [(b"content-type", ndjson.CONTENT_TYPE), *STREAM_HEADERS[1:]]
NDJSON_START = {"type": "http.response.start", "status": 200, "headers": NDJSON_HEADERS}
PING = sse.encode_comment("ping")
_json_encode = msgspec.json.Encoder().encode

SnapshotPart = tuple[str, str, list[Event]]
"""One channel of a snapshot: its name, its kind, the events to show."""


class StreamFormat(Protocol):
    """What a stream writes, in one format (``json``, ``ndjson``, ``html``, filtered ``html``)."""

    response_start: dict[str, Any]
    heartbeat: bytes
    shared: bool
    sends_status: bool

    def opening(self, retry_ms: int) -> bytes:
        """The first bytes of the body, before any gap, snapshot or event."""

    def retry(self, retry_ms: int) -> bytes:
        """The reconnect delay told at shutdown, just before the end (SSE's ``retry:``)."""

    def event(self, event: Event) -> bytes:
        """One event's frame; never raises."""

    def join(self, frames: list[bytes], events: list[Event]) -> bytes:
        """The frames of ``events`` for one write (html: a run of log rows as one message)."""

    def snapshot(self, parts: list[SnapshotPart], cursor: str | None) -> bytes:
        """Recent events per channel as replacing swaps; ``cursor`` is the newest id."""

    def gap(self, channels: list[str], cursor: str | None) -> bytes:
        """The frame telling the client it missed events on ``channels``; ``cursor`` its id."""

    def status(self) -> bytes:
        """The connection-status fragment (only asked when ``sends_status``)."""


class JsonFormat:
    """``format=json``: one JSON object per event, shared by every subscriber."""

    response_start = STREAM_START
    heartbeat = PING
    shared = True
    sends_status = False

    def opening(self, retry_ms: int) -> bytes:
        """``retry:`` only."""
        return sse.encode_retry(retry_ms)

    def retry(self, retry_ms: int) -> bytes:
        """``retry:``."""
        return sse.encode_retry(retry_ms)

    event = staticmethod(json_frame)  # the cached JSON frame, no call in between (hot path)
    join = staticmethod(concatenated)

    def snapshot(self, parts: list[SnapshotPart], cursor: str | None) -> bytes:
        """The events themselves (the latest value per key), in publish order."""
        return b"".join(self.event(event) for event in _in_publish_order(parts))

    def gap(self, channels: list[str], cursor: str | None) -> bytes:
        """``event: gap`` with ``{"channels": [...]}``."""
        body = _json_encode({"channels": channels}).decode()
        return sse.encode_event(body, event="gap", id=cursor)

    def status(self) -> bytes:
        """JSON streams carry no status fragment."""
        return b""


class NdjsonFormat(JsonFormat):
    """``format=ndjson``: format=json's objects, one per line; an empty line as heartbeat."""

    response_start = NDJSON_START
    heartbeat = ndjson.HEARTBEAT

    def opening(self, retry_ms: int) -> bytes:
        """Nothing: ``retry:`` is SSE's."""
        return b""

    def retry(self, retry_ms: int) -> bytes:
        """Nothing: ``retry:`` is SSE's."""
        return b""

    event = staticmethod(ndjson_frame)

    def gap(self, channels: list[str], cursor: str | None) -> bytes:
        """The line ``{"id", "channel": "gap", "kind": "gap", "data": {"channels": [...]}}``."""
        return ndjson.encode_gap(channels, cursor)


def _in_publish_order(parts: list[SnapshotPart]) -> list[Event]:
    return sorted((e for _channel, _kind, events in parts for e in events), key=lambda e: e.seq)


class HtmlFormat:
    """``format=html``: each kind's partial, shared; status fragments for the page's indicator."""

    response_start = STREAM_START
    heartbeat = PING
    shared = True
    sends_status = True
    highlight: Any = None

    def __init__(self, renderer: Renderer, render_failures: Counter[str]) -> None:
        self.renderer = renderer
        self.frames = HtmlFrames(renderer, render_failures)
        self.join = self.frames.joined

    def opening(self, retry_ms: int) -> bytes:
        """``retry:`` and the first status fragment."""
        return sse.encode_retry(retry_ms) + self.status()

    def retry(self, retry_ms: int) -> bytes:
        """``retry:``."""
        return sse.encode_retry(retry_ms)

    def event(self, event: Event) -> bytes:
        """The event's cached html frame."""
        return self.frames.frame(event)

    def snapshot(self, parts: list[SnapshotPart], cursor: str | None) -> bytes:
        """One replacing swap per channel; the last carries ``cursor`` as its id."""
        snapshot, highlight = self.frames.snapshot, self.highlight
        frames = [
            sse.encode_event(snapshot(channel, kind, events, highlight), event=channel)
            for channel, kind, events in parts
        ]
        if cursor is not None and frames:
            frames[-1] = b"id: %s\n" % cursor.encode() + frames[-1]
        return b"".join(frames)

    def gap(self, channels: list[str], cursor: str | None) -> bytes:
        """Fragments that reset the panels of ``channels``."""
        return sse.encode_event(self.renderer.gap(channels), event="gap", id=cursor)

    def status(self) -> bytes:
        """The fragment that keeps the page's live indicator green."""
        return sse.encode_event(self.renderer.status(), event="_status")


class FilteredHtmlFormat(HtmlFormat):
    """``format=html&q=...``: the pattern marked in each row (a frame per pattern, not format)."""

    shared = False

    def __init__(self, renderer: Renderer, render_failures: Counter[str], highlight: Any) -> None:
        super().__init__(renderer, render_failures)
        self.highlight = highlight
        self.join = concatenated  # its rows are marked per pattern (a SharedFilter's frames)

    def event(self, event: Event) -> bytes:
        """The event's html frame with the pattern marked (not cached)."""
        return self.frames.highlighted(event, self.highlight)


_JSON = JsonFormat()
_NDJSON = NdjsonFormat()


def stream_format(
    name: str, highlight: Any, renderer: Renderer, render_failures: Counter[str]
) -> StreamFormat:
    """The format object for ``format=name``; ``highlight`` is the ``q`` pattern, if any."""
    if name == "json":
        return _JSON
    if name == "ndjson":
        return _NDJSON
    if name != "html":
        raise ValueError(f"unknown stream format {name!r}")
    if highlight is not None:
        return FilteredHtmlFormat(renderer, render_failures, highlight)
    return HtmlFormat(renderer, render_failures)
