"""One client's stream: subscribe, write the start, then follow the subscription.

The loop sleeps on the subscription's wake flag, then writes everything new
in one write (under load that batches by itself). While it sleeps caught up
on a direct socket, the hub hands it new events' frames (``Feed.park``) and
its writer sends them once per loop turn: no wake-up per event, one write
per batch. A filtered stream is handed its :class:`~app.filters.SharedFilter`'s
frames (``b""`` for a line it leaves out): streams with the same filter
share one evaluation and one frame per line. What the bytes look like is the format's
(:mod:`app.web.streaming.format`); where they go, the writer's
(:mod:`app.web.streaming.writer`); the timers, the registry's sweeper
(:mod:`app.web.streaming.registry`), through :meth:`EventStream.sweep`.

Deliberate oddities:
- A cut (``lagging``, ``write_timeout``) aborts the client's connection: RST,
  the unsent bytes dropped, the socket closed at once. Ending the response
  politely would leave a client that never reads holding the connection, its
  file descriptor and megabytes of kernel buffer for as long as it likes; the
  abort also wakes a ``send`` blocked on that socket. Only where the server
  offers no way to the connection (not Hypercorn's HTTP/1.x) does the cut
  cancel the stream's task instead. ``CancelledError`` is re-raised, never
  swallowed; cleanup is in ``finally``.
- At shutdown a stream ends with a jittered ``retry:`` (``app.web.streaming.retry``)
  so its client does not come back with everyone else; a stream blocked on a
  full socket is aborted at once instead: its client reads nothing, so it
  could not take the end of the response either.
  So is the connection of a client that hung up (or half-closed) on the
  lean path: a polite close would wait for it to read what is queued.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

import msgspec

from app.broker.base import Broker, BrokerUnavailable, Feed, Start
from app.broker.hub import SubscriberLagging
from app.events import Event, is_pattern
from app.filters import EventFilter, SharedFilter, filter_key
from app.render import Renderer
from app.web.streaming.format import SnapshotPart, StreamFormat, stream_format
from app.web.streaming.registry import STATUS_EVERY_S, Cut, StreamRegistry, StreamTimings
from app.web.streaming.retry import jittered_retry_ms, shutdown_retry_ms
from app.web.streaming.writer import (
    Abort,
    DirectSocket,
    Send,
    SendWriter,
    SocketWriter,
    StreamWriter,
)

BATCH_EVENTS = 512
_json_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class StreamRequest:
    """A validated ``/events`` request."""

    patterns: tuple[str, ...]
    format: str
    filter: EventFilter
    start: Start
    client: str
    headers: tuple[tuple[bytes, bytes], ...] = ()  # added to the response's (CORS)


class EventStream:
    """Writes one subscription to one client, in its format, through its writer."""

    __slots__ = (
        "_only_channel",
        "_ping_due",
        "_shared",
        "_status_due",
        "aborted",
        "broker",
        "client_gone",
        "cut_reason",
        "format",
        "last_status",
        "registry",
        "request",
        "subscription",
        "task",
        "writer",
    )

    def __init__(
        self,
        request: StreamRequest,
        broker: Broker,
        renderer: Renderer,
        registry: StreamRegistry,
    ) -> None:
        self.request = request
        self.broker = broker
        self.registry = registry
        self.format: StreamFormat = stream_format(
            request.format, request.filter.pattern, renderer, registry.stats.render_failures
        )
        self.subscription: Feed | None = None
        self.writer: StreamWriter | None = None
        self.task: asyncio.Task[Any] | None = None
        self.last_status = 0.0
        self.cut_reason: str | None = None
        self.client_gone = False
        self.aborted = False
        self._ping_due = False
        self._status_due = False
        self._shared: SharedFilter | None = None
        if request.filter.active:
            key = filter_key(request.format, request.filter)
            self._shared = registry.shared_filter(key, request.filter, self.format.event)
        only = request.patterns[0] if len(request.patterns) == 1 else "*"
        self._only_channel = None if is_pattern(only) else only

    async def run(
        self, send: Send, socket: DirectSocket | None = None, abort: Abort | None = None
    ) -> None:
        """Subscribe, then send headers, the opening, the start frames and events until the end.

        The subscription is placed before the response starts, so a broker that
        cannot be reached is a 503 the client can retry, not a stream that dies.
        With ``socket`` (the server offers a way to the socket after the
        headers), body chunks skip ASGI ``send``, and while this stream is
        caught up the hub delivers new events (a filtered stream: those its
        filter keeps) straight to the socket without waking this task
        (``Feed.park``). ``abort`` closes the
        client's connection at once (see :meth:`abort`); with ``socket``, its
        own ``abort`` serves.
        """
        self.task = asyncio.current_task()
        try:
            async with self.broker.subscribe(self.request.patterns, self.request.start) as sub:
                self.subscription = sub
                await send(self._response_start())
                writer = self.writer = self._writer(sub, send, socket, abort)
                self.registry.add(self)
                try:
                    await writer.write(self._opening(sub))
                    await self._follow(sub, writer)
                    writer.flush()  # what the hub handed over last, before the end
                    if not (self.client_gone or self.aborted):
                        if self.registry.closing:
                            await writer.write(
                                self.format.retry(shutdown_retry_ms(random.random()))
                            )
                        await send({"type": "http.response.body", "body": b"", "more_body": False})
                except ConnectionError:
                    return  # the client went away mid-write: nothing left to tell it
                finally:
                    self.registry.remove(self)
        except BrokerUnavailable as error:
            if self.subscription is not None:
                raise  # lost mid-stream: too late for a 503
            await _send_unavailable(send, str(error))

    def _writer(
        self, sub: Feed, send: Send, socket: DirectSocket | None, abort: Abort | None
    ) -> StreamWriter:
        if socket is not None:
            return SocketWriter(socket, self.registry.stats, sub.interrupt, self.format.join)
        return SendWriter(send, abort, self.registry.stats)

    async def _follow(self, sub: Feed, writer: StreamWriter) -> None:
        shared = self._shared
        direct = writer.direct and (self.format.shared or shared is not None)
        while not self.registry.closing:
            if direct and not sub.wake.is_set():
                if shared is None:
                    sub.park(self.format.event, self._deliver)
                else:
                    sub.park(shared.frame, self._deliver)  # b"" (left out): no call
            try:
                events = await sub.next_batch(BATCH_EVENTS)
            except SubscriberLagging as lagging:
                if not self._ended(sub):
                    self.registry.cut(self, Cut("lagging", str(lagging)))
                return
            if self._ended(sub):
                return
            if writer.drain_due:
                await writer.drain()
            await writer.write(self._chunk(events))

    def _chunk(self, events: list[Event]) -> bytes:
        """The frames of ``events`` (filtered; html: a run of one channel's rows as one message,
        :meth:`StreamFormat.join`), then a heartbeat and a status fragment if due."""
        if self._shared is not None:
            frames = [self._shared.frame(event) for event in events]
            events = [event for event, frame in zip(events, frames, strict=True) if frame]
        else:
            encode = self.format.event
            frames = [encode(event) for event in events]
        chunk = b"".join(frames) if self._shared is not None else self.format.join(frames, events)
        if events:
            self.registry.count_delivered(events, self._only_channel)
        if self._ping_due:
            self._ping_due = False
            chunk += self.format.heartbeat
        if self._status_due:
            self._status_due = False
            self.last_status = asyncio.get_running_loop().time()
            chunk += self.format.status()
        return chunk

    def _ended(self, sub: Feed) -> bool:
        return bool(self.registry.closing or sub.closed_reason or self.client_gone or self.aborted)

    def _deliver(self, frame: bytes, event: Event) -> bool:
        """Take ``event``'s frame for this loop turn's write (the hub calls this while parked)."""
        assert self.writer is not None
        self.writer.take(frame, event)
        self.registry.count_one(event)
        return True

    def sweep(self, now: float, timings: StreamTimings) -> Cut | None:
        """The sweeper's one call: end if the client left, ask for heartbeats, or answer a cut.

        Returns the cut this stream deserves (its socket accepted no write for
        ``write_timeout``, or it fell past ``max_lag`` while blocked on it); the
        registry records and applies it.
        """
        writer, sub = self.writer, self.subscription
        if writer is None or sub is None:
            return None
        if writer.closed and not self.client_gone:
            self.client_gone = True
            self.abort()  # a client that hung up reads no more: drop what is queued for it
        if writer.write_started is not None:
            return None if self.cut_reason is not None else self._stuck(now - writer.write_started)
        if now - writer.last_write >= timings.heartbeat_s:
            self._ping_due = True
            sub.wake.set()
        if self.format.sends_status and now - self.last_status >= STATUS_EVERY_S:
            self._status_due = True
            sub.wake.set()
        return None

    def _stuck(self, blocked_s: float) -> Cut | None:
        write_timeout_s = self.registry.timings.write_timeout_s
        if blocked_s > write_timeout_s:
            return Cut("write_timeout", f"no write accepted for {write_timeout_s:g} s")
        if self.subscription is not None and self.subscription.too_far_behind():
            return Cut("lagging", "past max_lag while its socket was full")
        return None

    def take_cut(self, reason: str) -> bool:
        """Record that this stream is cut for ``reason``; False when it already was."""
        if self.cut_reason is not None:
            return False
        self.cut_reason = reason
        return True

    def end(self) -> None:
        """Shutdown: finish cleanly, or abort at once when blocked on a socket taking nothing."""
        if self.writer is not None and self.writer.write_started is not None:
            self.abort()
        elif self.subscription is not None:
            self.subscription.wake.set()

    def abort(self) -> None:
        """Close the client's connection at once, unsent bytes dropped; the task then ends.

        A ``send`` or drain blocked on that socket returns or fails at once. Without a
        way to the connection, the task is cancelled: the only way to interrupt a
        blocked ``send``.
        """
        self.aborted = True
        if self.subscription is not None:
            self.subscription.interrupt()
        aborted = self.writer is not None and self.writer.abort()
        if not aborted and self.task is not None:
            self.task.cancel()

    def _response_start(self) -> dict[str, Any]:
        start = self.format.response_start
        if not self.request.headers:
            return start  # shared: no list built per stream
        return {**start, "headers": [*start["headers"], *self.request.headers]}

    def _opening(self, sub: Feed) -> bytes:
        """The opening, then the gap and the snapshots the subscription was placed with."""
        retry_ms = jittered_retry_ms(self.registry.timings.retry_ms, random.random())
        frames = [self.format.opening(retry_ms)]
        if self.format.sends_status:
            self.last_status = asyncio.get_running_loop().time()
        if sub.gap_channels:
            self.registry.stats.gaps += 1
            frames.append(self.format.gap(sub.gap_channels, sub.gap_cursor))
        if sub.snapshots:
            frames.append(self._snapshot(sub))
        return b"".join(frames)

    def _snapshot(self, sub: Feed) -> bytes:
        """One part per channel (filtered); the newest event's id is the cursor."""
        snapshots = sub.snapshots
        newest = max((e for events in snapshots.values() for e in events), key=_seq, default=None)
        parts: list[SnapshotPart] = []
        for channel, events in snapshots.items():
            kind = events[-1].kind if events else sub.kind_of(channel)
            if kind is not None:
                parts.append((channel, kind, self._filtered(events)))
        return self.format.snapshot(parts, newest.id if newest is not None else None)

    def _filtered(self, events: list[Event]) -> list[Event]:
        event_filter = self.request.filter
        if not event_filter.active:
            return events
        return [event for event in events if event_filter.accepts(event)]


async def _send_unavailable(send: Send, detail: str) -> None:
    body = _json_encode({"error": f"broker unavailable: {detail}", "detail": None})
    headers = [
        (b"content-type", b"application/json"),
        (b"retry-after", str(BrokerUnavailable.retry_after_s).encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _seq(event: Event) -> int:
    return event.seq
