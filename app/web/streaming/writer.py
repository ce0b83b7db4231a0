"""Where a stream's bytes go: ASGI ``send``, or the client's socket directly.

Both writers time their blocked writes (``write_started``) and their last
accepted one (``last_write``) for the registry's sweeper, and count bytes.
Only the socket writer takes frames the hub hands over while the stream is
parked (:meth:`SocketWriter.take`): they go out in one write per loop turn,
joined by the stream's format (html: a run of log rows as one message).

Deliberate oddity: Hypercorn's ``send`` waits on the socket without a
deadline, so neither writer has one of its own: the sweeper's write timeout
is the deadline, and :meth:`abort` is how it interrupts a blocked write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from app.events import Event
from app.web.streaming.registry import StreamStats

Send = Callable[[dict[str, Any]], Awaitable[None]]
Abort = Callable[[], None]
Join = Callable[[list[bytes], list[Event]], bytes]


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


class StreamWriter(Protocol):
    """What the loop and the sweeper need from where the bytes go."""

    write_started: float | None
    last_write: float
    drain_due: bool

    @property
    def direct(self) -> bool:
        """True when the hub may hand frames to :meth:`take` while the stream is parked."""

    @property
    def closed(self) -> bool:
        """True when the client hung up and no task is listening for it."""

    async def write(self, body: bytes) -> None:
        """Write ``body`` (after anything taken earlier); raises ConnectionError once gone."""

    def take(self, frame: bytes, event: Event) -> None:
        """Queue ``event``'s frame the hub handed over, for one write at the end of this turn."""

    def flush(self) -> None:
        """Write what :meth:`take` queued, now."""

    async def drain(self) -> None:
        """Wait until the socket takes what is buffered."""

    def abort(self) -> bool:
        """Close the connection at once, unsent bytes dropped; False when there is no way to."""


class SendWriter:
    """Body chunks through ASGI ``send``; ``abort``: the server's way to the connection, if any."""

    __slots__ = ("_abort", "_loop", "_send", "_stats", "drain_due", "last_write", "write_started")

    direct = False
    closed = False

    def __init__(self, send: Send, abort: Abort | None, stats: StreamStats) -> None:
        self._send = send
        self._abort = abort
        self._stats = stats
        self._loop = asyncio.get_running_loop()
        self.write_started: float | None = None
        self.last_write = self._loop.time()
        self.drain_due = False

    async def write(self, body: bytes) -> None:
        """One ``http.response.body`` message, timed while it waits."""
        if not body:
            return
        self.write_started = self._loop.time()
        await self._send({"type": "http.response.body", "body": body, "more_body": True})
        self.write_started = None
        self.last_write = self._loop.time()
        self._stats.bytes_sent += len(body)

    def take(self, frame: bytes, event: Event) -> None:
        """Never called: the hub hands frames only to direct writers."""
        raise NotImplementedError("ASGI send takes no direct delivery")

    def flush(self) -> None:
        """Nothing is ever queued."""

    async def drain(self) -> None:
        """``send`` itself waited."""

    def abort(self) -> bool:
        """Abort the connection when the server offers a way to it."""
        if self._abort is None:
            return False
        self._abort()
        return True


class SocketWriter:
    """Body chunks straight to the socket; frames the hub hands over go out once per loop turn.

    Past high water, the writer asks the stream's task to drain (``drain_due``)
    and wakes it through ``on_full``.
    """

    __slots__ = (
        "_events",
        "_join",
        "_loop",
        "_on_full",
        "_pending",
        "_socket",
        "_stats",
        "aborted",
        "drain_due",
        "last_write",
        "write_started",
    )

    direct = True

    def __init__(
        self, socket: DirectSocket, stats: StreamStats, on_full: Abort, join: Join
    ) -> None:
        self._socket = socket
        self._stats = stats
        self._on_full = on_full
        self._join = join
        self._loop = asyncio.get_running_loop()
        self._pending: list[bytes] | None = None
        self._events: list[Event] = []
        self.write_started: float | None = None
        self.last_write = self._loop.time()
        self.drain_due = False
        self.aborted = False

    @property
    def closed(self) -> bool:
        """True once the client hung up (no task listens for ``http.disconnect`` here)."""
        return self._socket.closed

    def take(self, frame: bytes, event: Event) -> None:
        """Queue ``event``'s ``frame``; the first one of a loop turn schedules the write.

        Every event the hub hands over before the loop turns (an NDJSON batch,
        several publishes read at once) goes out in one write: the ``write``
        syscall was 84 % of the server's time with a write per event
        (docs/performance.md, S6).
        """
        if self._pending is None:
            self._pending = [frame]
            self._events = [event]
            self._loop.call_soon(self.flush)
        else:
            self._pending.append(frame)
            self._events.append(event)

    def flush(self) -> None:
        """Write what :meth:`take` queued; past high water, hand over to the task to drain."""
        pending, self._pending = self._pending, None
        if not pending or self.aborted:
            return
        body = pending[0] if len(pending) == 1 else self._join(pending, self._events)
        try:
            below_high_water = self._socket.write_now(body)
        except ConnectionError:
            below_high_water = False  # the task wakes, fails its next write and ends the stream
        else:
            self.last_write = self._loop.time()
            self._stats.bytes_sent += len(body)
            self.drain_due = not below_high_water
        if not below_high_water:
            self._on_full()

    async def write(self, body: bytes) -> None:
        """Write ``body`` after what was taken earlier; drain when past high water."""
        if self._pending is not None:
            self.flush()  # delivered earlier: goes first
        if not body:
            return
        if not self._socket.write_now(body):
            await self.drain()
        self.last_write = self._loop.time()
        self._stats.bytes_sent += len(body)

    async def drain(self) -> None:
        """Wait for the socket to take the buffered bytes; the sweeper times the wait."""
        self.drain_due = False
        self.write_started = self._loop.time()
        await self._socket.drain()
        self.write_started = None

    def abort(self) -> bool:
        """RST the connection; a drain blocked on it returns or fails at once."""
        self.aborted = True
        self._socket.abort()
        return True
