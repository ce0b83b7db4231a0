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
- What one write sends (:meth:`HtmlFrames.joined`): a run of two or more rows of one
  channel, whose partial splits its row (the log's), goes as one message: one delete,
  the rows, one template, so the browser swaps once instead of k times (at 200 lines/s
  a loaded browser fell behind a swap per row and its stream was cut). The run's delete
  and template are the renderer's; each row's bytes are cached on its event
  (``frames["html-row"]``, once a row went out in a run: a replayed run is not drawn
  again), and the run's message is kept for the ``RUNS_KEPT`` newest runs, so every
  stream sent the same run shares one bytes object. Its id is the run's last event's.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import Any

import msgspec
from markupsafe import escape

from app import ndjson, sse
from app.events import Event
from app.render import Renderer

log = logging.getLogger("pulseboard.stream")

Encode = Callable[[Event], bytes]
RUNS_KEPT = 64  # runs whose message is kept: each stream handed the same run reuses it
_json_encode = msgspec.json.Encoder().encode
# (first id, last id, length) -> (first, last, the message or None: not joinable)
_runs: OrderedDict[tuple[str, str, int], tuple[Event, Event, bytes | None]] = OrderedDict()


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


def concatenated(frames: list[bytes], events: list[Event]) -> bytes:
    """The frames one after another: one message per event (json, ndjson, filtered html)."""
    return b"".join(frames)


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

    def joined(self, frames: list[bytes], events: list[Event]) -> bytes:
        """``frames`` (of ``events``) for one write, each run of one channel's rows as one message.

        Never raises: a run that cannot be joined goes as its frames.
        """
        count = len(events)
        if count < 2:
            return b"".join(frames)
        out: list[bytes] = []
        start = 0
        while start < count:
            channel, end = events[start].channel, start + 1
            while end < count and events[end].channel == channel:
                end += 1
            run = self.run(events[start:end]) if end - start > 1 else None
            out.append(run if run is not None else b"".join(frames[start:end]))
            start = end
        return b"".join(out)

    def run(self, events: list[Event]) -> bytes | None:
        """Events of one channel as one message; None when their partial does not split rows.

        Kept for the newest runs (the same events, not only the same ids: a test's
        second app reuses ids).
        """
        first, last = events[0], events[-1]
        key = (first.id, last.id, len(events))
        kept = _runs.get(key)
        if kept is not None and kept[0] is first and kept[1] is last:
            return kept[2]
        frame = self._joined_run(events)
        _runs[key] = (first, last, frame)
        if len(_runs) > RUNS_KEPT:
            _runs.popitem(last=False)
        return frame

    def _joined_run(self, events: list[Event]) -> bytes | None:
        kind = events[0].kind
        try:
            if any(event.kind != kind for event in events):
                return None
            edges = self.renderer.run_edges(events)
            if edges is None:
                return None
            head, tail = edges
            pieces = [sse.encode_data(head)]
            for event in events[-self.renderer.view(kind).cap :]:
                row = self.row(event)
                if row is None:
                    return None
                pieces.append(row)
        except Exception:
            return None  # each event's own frame says what failed
        pieces.append(sse.encode_data(tail))
        return sse.encode_joined(pieces, event=events[0].channel, id=events[-1].id)

    def row(self, event: Event) -> bytes | None:
        """The row of ``event`` alone, as a piece of a ``data:`` field (cached on it)."""
        row = event.frames.get("html-row")
        if row is None:
            parts = self.renderer.event_parts(event)
            if parts is None or not parts.splits:
                return None
            row = event.frames["html-row"] = sse.encode_data(parts.row())
        return row

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
