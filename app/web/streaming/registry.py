"""Every open stream of a process, and the one sweeper task that times them all.

One sweeper instead of a timer per stream: on each pass it calls one method
on each stream (:meth:`~app.web.streaming.loop.EventStream.sweep`), which
asks itself for a heartbeat (and html streams, busy or not, for a
connection-status fragment), ends itself when its client hung up (on the
lean path of :mod:`app.web.asgi` no task listens for that), and answers the
cut it deserves when its socket accepted no write for ``write_timeout``
seconds; the registry records and applies the cut. At shutdown it ends every
stream. It looks every quarter of its shortest timer: every 0.25 s while an
html stream is open (the status second), far less often for JSON streams
alone; the first html stream wakes it from a long wait. It also hands streams
with the same filter one :class:`~app.filters.SharedFilter` (kept while a
stream uses it), all of them scanning with one :class:`~app.filters.PatternSet`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from weakref import WeakValueDictionary

from app.events import Event
from app.filters import EventFilter, FilterKey, PatternSet, SharedFilter

if TYPE_CHECKING:
    from app.web.streaming.loop import EventStream

log = logging.getLogger("pulseboard.stream")

STATUS_EVERY_S = 1.0
"""How often an html stream gets its status fragment, whatever ``server.heartbeat`` is:
the page's indicator leaves "Live" a few of these after they stop (``STALE_AFTER_S``)."""
STALE_AFTER_S = 3.0
"""Seconds without a status fragment after which the page shows "Reconnecting…" and dims."""
OFFLINE_AFTER_S = 10.0
"""Seconds without a status fragment after which the page says "Stale" / "Offline"."""


@dataclass(frozen=True)
class StreamTimings:
    """The server settings a stream runs by."""

    heartbeat_s: float
    write_timeout_s: float
    retry_ms: int


@dataclass(frozen=True, slots=True)
class Cut:
    """Why a stream is disconnected for being slow (``reason`` is the metrics label)."""

    reason: str
    detail: str


@dataclass
class StreamStats:
    """Plain counters the hot path adds to; ``app.serve.metrics`` reads them at scrape time."""

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
        self._status_streams = 0
        self._nap: asyncio.Future[None] | None = None  # the sweeper's wait (no task of its own)
        self._sweeper: asyncio.Task[None] | None = None
        self._filters: WeakValueDictionary[FilterKey, SharedFilter] = WeakValueDictionary()
        self._patterns = PatternSet(self._live_patterns)

    def shared_filter(
        self, key: FilterKey, event_filter: EventFilter, encode: Callable[[Event], bytes]
    ) -> SharedFilter:
        """The one filter of every open stream whose key is ``key`` (made from these if new)."""
        shared = self._filters.get(key)
        if shared is None:
            shared = self._filters[key] = SharedFilter(event_filter, encode, self._patterns)
            if key[1] is not None:
                self._patterns.stale()
        return shared

    def _live_patterns(self) -> list[str]:
        return [key[1] for key in self._filters if key[1] is not None]

    @property
    def sweep_interval_s(self) -> float:
        """How often the sweeper looks: fine enough for the shortest timer it serves.

        The status fragment's second counts only while a stream sends one (html):
        a pass costs about 1.5 µs a stream, and 10,000 JSON streams swept every
        0.25 s cost 6 % of a core doing nothing (docs/performance.md, issue 18).
        """
        shortest = min(self.timings.heartbeat_s, self.timings.write_timeout_s)
        if self._status_streams:
            shortest = min(shortest, STATUS_EVERY_S)
        return max(0.02, shortest / 4)

    def per_client(self, client: str) -> int:
        """Open streams of one client address."""
        return self.clients[client]

    def add(self, stream: EventStream) -> None:
        """Track a stream that has started its response."""
        self.streams.add(stream)
        self.clients[stream.request.client] += 1
        self._empty.clear()
        if stream.format.sends_status:
            self._status_streams += 1
            if self._status_streams == 1 and self._nap is not None:
                _wake(self._nap)  # its first status is due in a second, not after a long wait

    def remove(self, stream: EventStream) -> None:
        """Forget a stream that ended, however it ended."""
        if stream not in self.streams:
            return
        self.streams.remove(stream)
        if stream.format.sends_status:
            self._status_streams -= 1
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
            stream.end()
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

    def cut(self, stream: EventStream, cut: Cut) -> None:
        """Disconnect ``stream`` for being slow: record it, then abort its connection."""
        if not stream.take_cut(cut.reason):
            return  # the sweeper and the stream itself may both find it behind
        self.stats.cuts[cut.reason] += 1
        log.warning(
            "slow client cut client=%s channels=%s reason=%s detail=%r",
            stream.request.client,
            ",".join(stream.request.patterns),
            cut.reason,
            cut.detail,
        )
        stream.abort()

    def sweep(self, now: float) -> None:
        """One pass of the sweeper at ``now`` (the loop's clock; tests pass any time they like)."""
        for stream in list(self.streams):
            cut = stream.sweep(now, self.timings)
            if cut is not None:
                self.cut(stream, cut)

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            nap = self._nap = loop.create_future()
            timer = loop.call_later(self.sweep_interval_s, _wake, nap)
            try:
                await nap
            finally:
                timer.cancel()
                self._nap = None
            self.sweep(loop.time())


def _wake(nap: asyncio.Future[None]) -> None:
    if not nap.done():
        nap.set_result(None)
