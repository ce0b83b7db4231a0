"""One client's SSE stream, and the registry that times every open stream.

A stream owns one broker subscription. It sleeps on the subscription's
``wake`` flag, then writes everything new in one write (under load that
batches by itself). While it sleeps caught up, the hub hands it new events
(``Subscription.deliver``) and it writes them to its socket once per loop
turn: no wake-up per event, one write per batch. The
registry runs one sweeper task for all streams instead of a timer per
stream: it asks idle streams for a heartbeat (and html streams, busy or not,
for a connection-status fragment), cuts streams whose socket accepted no
write for ``write_timeout`` seconds (Hypercorn's ``send`` waits on the socket
without a deadline: the deadline is ours), ends streams whose client hung up
(on the lean path of :mod:`app.web.asgi` no task listens for that), and ends
every stream at shutdown.

Deliberate oddities:
- A cut (``lagging``, ``write_timeout``) aborts the client's connection: RST,
  the unsent bytes dropped, the socket closed at once. Ending the response
  politely would leave a client that never reads holding the connection, its
  file descriptor and megabytes of kernel buffer for as long as it likes; the
  abort also wakes a ``send`` blocked on that socket. Only where the server
  offers no way to the connection (not Hypercorn's HTTP/1.x) does the cut
  cancel the stream's task instead. ``CancelledError`` is re-raised, never
  swallowed; cleanup is in ``finally``.
- At shutdown a stream blocked on a full socket is aborted at once: its
  client reads nothing, so it could not take the end of the response either.
  So is the connection of a client that hung up (or half-closed) on the
  lean path: a polite close would wait for it to read what is queued.
- Frames come from :mod:`app.frames`: cached on the event per format, so N
  subscribers of one format share one bytes object (filtered html streams
  render their own), and never raising: a failing partial is a fallback row.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from app import sse
from app.broker.base import Broker, BrokerUnavailable, Start
from app.broker.hub import Encode, SubscriberLagging, Subscription
from app.events import Event, is_pattern
from app.filters import EventFilter
from app.frames import HtmlFrames, json_frame
from app.render import Renderer

log = logging.getLogger("pulseboard.stream")

Send = Callable[[dict[str, Any]], Awaitable[None]]


class DirectSocket(Protocol):
    """The client's socket, reached without ASGI ``send`` (see :mod:`app.web.asgi`)."""

    @property
    def closed(self) -> bool:
        """True once the client has hung up."""

    def write_now(self, body: bytes) -> bool:
        """Write one body chunk without waiting; False once the buffer is past high water."""

    async def drain(self) -> None:
        """Wait until the socket buffer is back under its low-water mark."""

    def abort(self) -> None:
        """Close the connection at once, dropping what is unsent (RST)."""


Abort = Callable[[], None]
STREAM_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
STREAM_START = {"type": "http.response.start", "status": 200, "headers": STREAM_HEADERS}
PING = sse.encode_comment("ping")
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


@dataclass(frozen=True)
class StreamTimings:
    """The server settings a stream runs by."""

    heartbeat_s: float
    write_timeout_s: float
    retry_ms: int


class EventStream:
    """Writes one subscription to one client as SSE."""

    __slots__ = (
        "_abort",
        "_encode_event",
        "_filtering",
        "_html",
        "_loop",
        "_only_channel",
        "_pending",
        "_send",
        "_socket",
        "aborted",
        "broker",
        "client_gone",
        "cut_reason",
        "drain_due",
        "last_status",
        "last_write",
        "ping_due",
        "registry",
        "renderer",
        "request",
        "status_due",
        "subscription",
        "task",
        "write_started",
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
        self.renderer = renderer
        self.registry = registry
        self.subscription: Subscription | None = None
        self.task: asyncio.Task[Any] | None = None
        self.write_started: float | None = None
        self.last_write = 0.0
        self.last_status = 0.0
        self.ping_due = False
        self.status_due = False
        self.cut_reason: str | None = None
        self.drain_due = False
        self.client_gone = False
        self.aborted = False
        self._loop = asyncio.get_running_loop()
        self._filtering = request.filter.active
        self._send: Send | None = None
        self._socket: DirectSocket | None = None
        self._abort: Abort | None = None
        self._pending: list[bytes] | None = None
        self._html = HtmlFrames(renderer, registry.stats.render_failures)
        self._encode_event: Encode = self._html.frame if request.format == "html" else json_frame
        only = request.patterns[0] if len(request.patterns) == 1 else "*"
        self._only_channel = None if is_pattern(only) else only

    async def run(
        self, send: Send, socket: DirectSocket | None = None, abort: Abort | None = None
    ) -> None:
        """Subscribe, then send headers, ``retry:``, the start frames and events until the end.

        The subscription is placed before the response starts, so a broker that
        cannot be reached is a 503 the client can retry, not a stream that dies.
        With ``socket`` (the server offers a way to the socket after the
        headers), body chunks skip ASGI ``send``, and while this stream is
        caught up and unfiltered the hub delivers new events straight to the
        socket without waking this task (:attr:`Subscription.deliver`).
        ``abort`` closes the client's connection at once (see :meth:`abort`);
        with ``socket``, its own ``abort`` serves.
        """
        self.task = asyncio.current_task()
        self._abort = socket.abort if socket is not None else abort
        try:
            async with self.broker.subscribe(self.request.patterns, self.request.start) as sub:
                self.subscription = sub
                await send(STREAM_START)
                self._send, self._socket = send, socket
                self.registry.add(self)
                try:
                    await self._write(sse.encode_retry(self.registry.timings.retry_ms))
                    await self._write(self._start_frames(sub))
                    await self._follow(sub)
                    self._flush()  # what the hub handed over last, before the end
                    if not (self.client_gone or self.aborted):
                        await send({"type": "http.response.body", "body": b"", "more_body": False})
                except ConnectionError:
                    return  # the client went away mid-write: nothing left to tell it
                finally:
                    self.registry.remove(self)
        except BrokerUnavailable as error:
            if self.subscription is not None:
                raise  # lost mid-stream: too late for a 503
            await _send_unavailable(send, str(error))

    async def _follow(self, sub: Subscription) -> None:
        direct = self._socket is not None and not self._filtering
        while not self.registry.closing:
            if direct and not sub.wake.is_set():
                sub.park(self._encode_event, self._deliver)
            try:
                events = await sub.next_batch(BATCH_EVENTS)
            except SubscriberLagging as lagging:
                if not self._ended(sub):
                    self.registry.cut(self, "lagging", str(lagging))
                return
            if self._ended(sub):
                return
            if self.drain_due:
                self.drain_due = False
                await self._drain()
            if self._filtering:
                events = self._filtered(events)
            chunk = self._frames(events)
            if events:
                self.registry.count_delivered(events, self._only_channel)
            if self.ping_due:
                self.ping_due = False
                chunk += PING
            if self.status_due:
                self.status_due = False
                self.last_status = self._loop.time()
                chunk += self._status_frame()
            if chunk:
                await self._write(chunk)

    def _ended(self, sub: Subscription) -> bool:
        return bool(self.registry.closing or sub.closed_reason or self.client_gone or self.aborted)

    def abort(self) -> None:
        """Close the client's connection at once, unsent bytes dropped; the task then ends.

        A ``send`` or drain blocked on that socket returns or fails at once. Without a
        way to the connection, the task is cancelled: the only way to interrupt a
        blocked ``send``.
        """
        self.aborted = True
        if self.subscription is not None:
            self.subscription.interrupt()
        if self._abort is not None:
            self._abort()
        elif self.task is not None:
            self.task.cancel()

    def socket_closed(self) -> bool:
        """True when the client hung up on a stream writing to its socket directly.

        Such a stream has no task listening for ``http.disconnect``
        (:mod:`app.web.asgi`); the registry's sweeper asks this instead.
        """
        return self._socket is not None and self._socket.closed

    def _deliver(self, frame: bytes, event: Event) -> bool:
        """Take ``event``'s frame for this loop turn's write (the hub calls this while parked).

        Every event the hub hands over before the loop turns (an NDJSON batch,
        several publishes read at once) goes out in one write: the ``write``
        syscall was 84 % of the server's time with a write per event
        (docs/performance.md, S6).
        """
        if self._pending is None:
            self._pending = [frame]
            self._loop.call_soon(self._flush)
        else:
            self._pending.append(frame)
        self.registry.count_one(event)
        return True

    def _flush(self) -> None:
        """Write what :meth:`_deliver` took; past high water, hand over to the task to drain."""
        pending, self._pending = self._pending, None
        if not pending or self.aborted:
            return
        assert self._socket is not None and self.subscription is not None
        body = b"".join(pending)
        try:
            below_high_water = self._socket.write_now(body)
        except ConnectionError:
            below_high_water = False  # the task wakes, fails its next write and ends the stream
        else:
            self.last_write = self._loop.time()
            self.registry.stats.bytes_sent += len(body)
            self.drain_due = not below_high_water
        if not below_high_water:
            self.subscription.interrupt()

    async def _write(self, body: bytes) -> None:
        if self._pending is not None:
            self._flush()  # delivered earlier: goes first
        if not body:
            return
        if self._socket is not None:
            if not self._socket.write_now(body):
                await self._drain()
        else:
            assert self._send is not None
            self.write_started = self._loop.time()
            await self._send({"type": "http.response.body", "body": body, "more_body": True})
            self.write_started = None
        self.last_write = self._loop.time()
        self.registry.stats.bytes_sent += len(body)

    async def _drain(self) -> None:
        """Wait for the socket to take the buffered bytes; the sweeper times the wait."""
        assert self._socket is not None
        self.write_started = self._loop.time()
        await self._socket.drain()
        self.write_started = None

    def _start_frames(self, sub: Subscription) -> bytes:
        frames: list[bytes] = []
        html = self.request.format == "html"
        if html:
            self.last_status = self._loop.time()
            frames.append(self._status_frame())
        if sub.gap_channels:
            frames.append(self._gap_frame(sub.gap_channels, sub.gap_cursor))
        if sub.snapshots:
            frames.append(self._snapshot_frames(sub.snapshots))
        return b"".join(frames)

    def _gap_frame(self, channels: list[str], cursor: str | None) -> bytes:
        self.registry.stats.gaps += 1
        if self.request.format == "html":
            return sse.encode_event(self.renderer.gap(channels), event="gap", id=cursor)
        body = _json_encode({"channels": channels}).decode()
        return sse.encode_event(body, event="gap", id=cursor)

    def _snapshot_frames(self, snapshots: dict[str, list[Event]]) -> bytes:
        """One replacing swap per channel; the last carries the newest id as the cursor."""
        newest = max((e for events in snapshots.values() for e in events), key=_seq, default=None)
        frames = []
        for channel, events in snapshots.items():
            kind = events[-1].kind if events else self._kind_of(channel)
            if kind is None:
                continue
            html = self._html.snapshot(
                channel, kind, self._filtered(events), self.request.filter.pattern
            )
            frames.append(sse.encode_event(html, event=channel))
        if newest is not None and frames:
            frames[-1] = b"id: %s\n" % newest.id.encode() + frames[-1]
        return b"".join(frames)

    def _kind_of(self, channel: str) -> str | None:
        """The kind of a channel this stream follows (its log is among the cursors)."""
        assert self.subscription is not None
        return next((log.kind for log in self.subscription.cursors if log.name == channel), None)

    def _filtered(self, events: list[Event]) -> list[Event]:
        event_filter = self.request.filter
        if not event_filter.active:
            return events
        return [event for event in events if event_filter.accepts(event)]

    def _frames(self, events: list[Event]) -> bytes:
        encode = self._encode
        return b"".join([encode(event) for event in events])

    def _encode(self, event: Event) -> bytes:
        pattern = self.request.filter.pattern
        if pattern is not None and self.request.format == "html":
            return self._html.highlighted(event, pattern)
        return self._encode_event(event)

    def _status_frame(self) -> bytes:
        return sse.encode_event(self.renderer.status(), event="_status")


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


@dataclass
class StreamStats:
    """Plain counters the hot path adds to; ``app.metrics`` reads them at scrape time."""

    delivered: Counter[str] = field(default_factory=Counter)
    bytes_sent: int = 0
    gaps: int = 0
    cuts: Counter[str] = field(default_factory=Counter)
    render_failures: Counter[str] = field(default_factory=Counter)


class StreamRegistry:
    """Every open stream of this process; one sweeper task times them all."""

    def __init__(
        self, timings: StreamTimings, observe_latency: Callable[[float], None] | None = None
    ) -> None:
        self.timings = timings
        self.stats = StreamStats()
        self.observe_latency = observe_latency
        self.streams: set[EventStream] = set()
        self.clients: Counter[str] = Counter()
        self.closing = False
        self._empty = asyncio.Event()
        self._empty.set()
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def sweep_interval_s(self) -> float:
        """How often the sweeper looks: fine enough for the shortest timer it serves."""
        shortest = min(self.timings.heartbeat_s, self.timings.write_timeout_s)
        return max(0.02, min(1.0, shortest / 4))

    def per_client(self, client: str) -> int:
        """Open streams of one client address."""
        return self.clients[client]

    def add(self, stream: EventStream) -> None:
        """Track a stream that has started its response."""
        stream.last_write = asyncio.get_running_loop().time()
        self.streams.add(stream)
        self.clients[stream.request.client] += 1
        self._empty.clear()

    def remove(self, stream: EventStream) -> None:
        """Forget a stream that ended, however it ended."""
        if stream not in self.streams:
            return
        self.streams.remove(stream)
        self.clients[stream.request.client] -= 1
        if not self.clients[stream.request.client]:
            del self.clients[stream.request.client]
        if not self.streams:
            self._empty.set()

    def start(self) -> None:
        """Start the sweeper."""
        self._sweeper = asyncio.create_task(self._sweep(), name="stream sweeper")

    async def stop(self) -> None:
        """Stop the sweeper."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None

    async def close_all(self, grace_s: float) -> None:
        """End every stream cleanly; abort those blocked on a full socket, now or after ``grace_s``.

        A client whose socket takes no write cannot take the end of the response
        either: waiting for it would only delay the exit.
        """
        self.closing = True
        for stream in list(self.streams):
            if stream.write_started is not None:
                stream.abort()
            elif stream.subscription is not None:
                stream.subscription.wake.set()
        try:
            await asyncio.wait_for(self._empty.wait(), timeout=grace_s)
        except TimeoutError:
            for stream in list(self.streams):
                stream.abort()

    def count_delivered(self, events: list[Event], only_channel: str | None) -> None:
        """Count events about to be written; observe the oldest one's publish→write latency.

        ``only_channel``: the stream follows that one channel, so no event needs a look.
        """
        delivered = self.stats.delivered
        if only_channel is not None:
            delivered[only_channel] += len(events)
        else:
            for event in events:
                delivered[event.channel] += 1
        if self.observe_latency is not None:
            self.observe_latency(time.time() - events[0].time)

    def count_one(self, event: Event) -> None:
        """:meth:`count_delivered` for the one event of a direct delivery."""
        self.stats.delivered[event.channel] += 1
        if self.observe_latency is not None:
            self.observe_latency(time.time() - event.time)

    def cut(self, stream: EventStream, reason: str, detail: str) -> None:
        """Disconnect ``stream`` for being slow: record it, then abort its connection."""
        if stream.cut_reason is not None:
            return  # the sweeper and the stream itself may both find it behind
        stream.cut_reason = reason
        self.stats.cuts[reason] += 1
        log.warning(
            "slow client cut client=%s channels=%s reason=%s detail=%r",
            stream.request.client,
            ",".join(stream.request.patterns),
            reason,
            detail,
        )
        stream.abort()

    def _cut_if_stuck(self, stream: EventStream, blocked_s: float) -> None:
        """Cut a stream blocked on its socket too long, or while falling past max_lag."""
        if blocked_s > self.timings.write_timeout_s:
            detail = f"no write accepted for {self.timings.write_timeout_s:g} s"
            self.cut(stream, "write_timeout", detail)
        elif stream.subscription is not None and stream.subscription.too_far_behind():
            self.cut(stream, "lagging", "past max_lag while its socket was full")

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.sweep_interval_s)
            now = loop.time()
            for stream in list(self.streams):
                self._check(stream, now)

    def _check(self, stream: EventStream, now: float) -> None:
        if stream.socket_closed() and not stream.client_gone:
            stream.client_gone = True
            stream.abort()  # a client that hung up reads no more: drop what is queued for it
        started = stream.write_started
        if started is not None:
            if stream.cut_reason is None:
                self._cut_if_stuck(stream, now - started)
            return
        if stream.subscription is None:
            return
        heartbeat_s = self.timings.heartbeat_s
        if now - stream.last_write >= heartbeat_s:
            stream.ping_due = True
            stream.subscription.wake.set()
        if stream.request.format == "html" and now - stream.last_status >= heartbeat_s:
            stream.status_due = True
            stream.subscription.wake.set()
