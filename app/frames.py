"""An event as the SSE frame one stream format writes, encoded once per format.

The broker's hub calls these while it fans an event out to streams parked on
their sockets, on the publisher's task: so nothing here raises. An html
partial that fails for an event (a plugin template, a payload it did not
expect) renders a fallback fragment instead, the event's JSON escaped, and is
logged once per kind; every subscriber still gets the event.

Deliberate oddities:
- Frames are cached on the event per format (``Event.frames``), so N
  subscribers of one format share one bytes object; a highlighted (filtered)
  html frame is not cached here: the row it marks is the renderer's, drawn
  once per event (``Renderer.event_parts``), and streams with the same filter
  share the frame through their ``SharedFilter``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

import msgspec
from markupsafe import escape

from app import ndjson, sse
from app.events import Event
from app.render import Renderer

log = logging.getLogger("pulseboard.stream")

Encode = Callable[[Event], bytes]
_json_encode = msgspec.json.Encoder().encode


def json_frame(event: Event) -> bytes:
    """The ``format=json`` frame of ``event`` (cached on it)."""
    frame = event.frames.get("json")
    if frame is None:
        body = _json_encode(event.as_json_dict())
        frame = event.frames["json"] = sse.encode_json_event(body, event=event.channel, id=event.id)
    return frame


def ndjson_frame(event: Event) -> bytes:
    """The ``format=ndjson`` line of ``event`` (cached on it)."""
    frame = event.frames.get("ndjson")
    if frame is None:
        frame = event.frames["ndjson"] = ndjson.encode_line(_json_encode(event.as_json_dict()))
    return frame


def fallback_html(event: Event) -> str:
    """What an event whose partial failed shows: its JSON, escaped, in a marked row."""
    body = escape(_json_encode(event.as_json_dict()).decode())
    return f'<pre class="render-failed" data-kind="{escape(event.kind)}">{body}</pre>'


class HtmlFrames:
    """The ``format=html`` frames of one renderer; failures counted per kind in ``failures``."""

    def __init__(self, renderer: Renderer, failures: Counter[str]) -> None:
        self.renderer = renderer
        self.failures = failures

    def frame(self, event: Event) -> bytes:
        """The html frame of ``event`` (cached on it)."""
        frame = event.frames.get("html")
        if frame is None:
            html = self.render(event)
            frame = event.frames["html"] = sse.encode_event(html, event=event.channel, id=event.id)
        return frame

    def highlighted(self, event: Event, pattern: Any) -> bytes:
        """The html frame of ``event`` with ``pattern`` marked (a filtered stream's own)."""
        return sse.encode_event(self.render(event, pattern), event=event.channel, id=event.id)

    def render(self, event: Event, highlight: Any = None) -> str:
        """The kind's partial for ``event``, or :func:`fallback_html` when it raises."""
        try:
            return self.renderer.event(event, highlight=highlight)
        except Exception:
            self.failed(event.kind, event.id)
            return fallback_html(event)

    def snapshot(self, channel: str, kind: str, events: list[Event], highlight: Any) -> str:
        """The replacing swap of ``channel``; when the partial fails, an empty one plus rows."""
        try:
            return self.renderer.snapshot(channel, kind, events, highlight=highlight)
        except Exception:
            self.failed(kind, channel)
        rows = "".join(self.render(event, highlight) for event in events)
        try:
            return self.renderer.snapshot(channel, kind, [], highlight=highlight) + rows
        except Exception:
            return rows

    def failed(self, kind: str, what: str) -> None:
        """Count a failed render; log the first one of each kind with its traceback."""
        self.failures[kind] += 1
        if self.failures[kind] == 1:
            log.exception("render failed kind=%s at=%s; sending a fallback fragment", kind, what)
