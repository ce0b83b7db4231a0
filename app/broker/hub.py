"""Local fan-out shared by every broker backend: channel rings and subscriber cursors.

Each channel is a ring buffer of its newest events. A subscriber holds one
cursor (the next offset to read) per channel it follows, plus a
:class:`Wake` flag that the hub sets when something is appended — or, while
the subscriber is caught up and parked (:meth:`Subscription.park`), a callable
the hub hands the new event's encoded frame to directly. A woken subscriber reads everything new in
one go (:meth:`Subscription.take`), merged across channels in broker order.
Nothing is copied per subscriber and nothing queues per subscriber: memory is
the rings, whatever the subscriber count.

Deliberate oddities:
- ``take`` never blocks and never awaits: a subscriber can only fall behind by
  not calling it, which the ring detects (overwritten cursor) and
  ``max_lag`` bounds.
- Latest-value channels (kinds with ``latest_value_key``) never cut a slow
  subscriber: it skips to the newest event per key instead (conflation).
- The hub runs on the publisher's task, so it never lets a subscriber's code
  raise into it: a parked subscriber's encoder and ``deliver`` are called
  under ``try``, and any failure falls back to waking that subscriber. The
  encoders cache their frame on the event, so each format is encoded once.
- :class:`Wake` stands in for ``asyncio.Event``, which allocates a 760-byte
  waiter deque up front: one per open stream, about 4 % of an idle stream's
  memory (docs/performance.md, S1).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

from app.events import Event, KindRegistry, is_pattern, pattern_matches

logger = logging.getLogger(__name__)

Encode = Callable[[Event], bytes]
Deliver = Callable[[bytes, Event], bool]


class SubscriberLagging(Exception):
    """The subscriber fell more than ``max_lag`` events behind and must reconnect."""


class Wake:
    """A flag one task sleeps on until it is set (``asyncio.Event`` for a single waiter)."""

    __slots__ = ("_set", "_waiter")

    def __init__(self) -> None:
        self._set = False
        self._waiter: asyncio.Future[None] | None = None

    def is_set(self) -> bool:
        """True from :meth:`set` until :meth:`clear`."""
        return self._set

    def set(self) -> None:
        """Set the flag and wake the waiting task, if any."""
        if self._set:
            return
        self._set = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def clear(self) -> None:
        """Unset the flag."""
        self._set = False

    async def wait(self) -> None:
        """Return once the flag is set (at once if it is)."""
        if self._set:
            return
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            self._waiter = None


class ChannelLog:
    """A channel's ring of its newest ``capacity`` events, indexed by channel offset.

    The ring grows with its content up to ``capacity`` and only then wraps: a
    channel of one event costs one slot, not ``capacity`` (issue 12).
    """

    __slots__ = (
        "_origin",
        "_ring",
        "capacity",
        "declared",
        "dropped_seq",
        "floor",
        "idle_since",
        "kind",
        "latest_by_key",
        "latest_value_key",
        "name",
        "next_offset",
        "seen_offset",
        "subscribers",
    )

    def __init__(self, name: str, kind: str, capacity: int, latest_value_key: str | None) -> None:
        self.name = name
        self.kind = kind
        self.capacity = capacity
        self.latest_value_key = latest_value_key
        self.next_offset = 0
        self.floor = 0
        self.dropped_seq = 0
        self.declared = False
        self.idle_since: float | None = None
        self.seen_offset = 0
        self.subscribers: set[Subscription] = set()
        self.latest_by_key: dict[str, Event] = {}
        self._origin = 0
        self._ring: list[Event] = []

    @property
    def first_offset(self) -> int:
        """Offset of the oldest event still retained."""
        return max(self.floor, self.next_offset - self.capacity)

    @property
    def retained(self) -> int:
        """How many events the ring holds."""
        return self.next_offset - self.first_offset

    @property
    def last(self) -> Event | None:
        """The newest event, if any."""
        return self.get(self.next_offset - 1) if self.next_offset else None

    def get(self, offset: int) -> Event:
        """The event at ``offset`` (which must be retained)."""
        event = self._ring[(offset - self._origin) % self.capacity]
        assert event.offset == offset
        return event

    def start_at(self, offset: int, dropped_seq: int) -> None:
        """Begin an empty ring part-way into its channel (a backend loading retained history).

        Nothing before ``offset`` is retained; cursors at or before ``dropped_seq`` get a gap.
        """
        self.floor = self.next_offset = self._origin = offset
        self.dropped_seq = dropped_seq
        self._ring.clear()

    def append(self, event: Event) -> None:
        """Store ``event`` (its offset must be ``next_offset``) and wake subscribers."""
        ring = self._ring
        if len(ring) < self.capacity:
            ring.append(event)
        else:
            slot = (event.offset - self._origin) % self.capacity
            self.dropped_seq = ring[slot].seq
            ring[slot] = event
        self.next_offset = event.offset + 1
        if self.latest_value_key is not None:
            self.latest_by_key[str(event.data.get(self.latest_value_key))] = event
        for subscriber in self.subscribers:
            deliver = subscriber.deliver
            if deliver is not None and subscriber.cursors[self] == event.offset:
                try:  # the publisher's task: a subscriber's failure only wakes it
                    frame = subscriber.encode(event)
                    handed = not frame or deliver(frame, event)  # b"": filtered out, moves on
                except Exception:
                    logger.exception("direct delivery of %s failed; woke its subscriber", event.id)
                    handed = False
                if handed:
                    subscriber.cursors[self] = event.offset + 1
                    continue
            subscriber.deliver = None
            subscriber.wake.set()

    def offset_after(self, seq: int) -> int:
        """Offset of the first retained event whose seq is greater than ``seq``."""
        low, high = self.first_offset, self.next_offset
        while low < high:
            middle = (low + high) // 2
            if self.get(middle).seq <= seq:
                low = middle + 1
            else:
                high = middle
        return low

    def offset_since(self, since: float) -> int:
        """Offset of the first retained event whose time is at or after ``since``.

        Times follow publish order (one clock per broker); where clocks of
        several publishers disagree by a little, so does the answer.
        """
        low, high = self.first_offset, self.next_offset
        while low < high:
            middle = (low + high) // 2
            if self.get(middle).time < since:
                low = middle + 1
            else:
                high = middle
        return low

    def slice(self, start: int, stop: int) -> list[Event]:
        """Events with offsets in ``[start, stop)``, all retained (one or two list slices)."""
        if stop <= start:
            return []
        head = (start - self._origin) % self.capacity
        tail = head + stop - start
        if tail <= self.capacity:
            return self._ring[head:tail]
        return self._ring[head:] + self._ring[: tail - self.capacity]

    def recent(self, count: int) -> list[Event]:
        """The newest ``count`` events, oldest first (latest per key on latest-value channels)."""
        if self.latest_value_key is not None:
            return sorted(self.latest_by_key.values(), key=lambda event: event.seq)
        return self.slice(max(self.first_offset, self.next_offset - count), self.next_offset)


class Subscription:
    """A subscriber's cursors into the channels matching its patterns.

    Attributes:
        wake: set by the hub when one of its channels has news (and by the
            gateway for heartbeats and shutdown); the stream clears it.
        deliver: while set (:meth:`park`), the hub hands each new event of a
            channel this subscriber is caught up on straight to it, as the
            frame ``encode`` made (it takes the frame and returns True),
            instead of waking its task; an empty frame (a filtered stream's
            line left out) only moves the cursor on; on False, on any exception, or
            whenever it wakes the task, the hub clears it. The stream parks
            only while it has nothing pending, so order holds.
        gap_channels: channels whose history after the client's cursor is lost.
        gap_cursor: with a gap, the id just before the replay that follows it
            (the gap frame's ``id:``): a client reconnecting with it is told
            about that gap once, not again.
        snapshots: per channel, recent events to render as a replacing swap
            (only when the start asked for snapshots).
        closed_reason: set when the hub ends the subscription (shutdown).
    """

    __slots__ = (
        "_allowance",
        "closed_reason",
        "cursors",
        "deliver",
        "encode",
        "gap_channels",
        "gap_cursor",
        "max_lag",
        "patterns",
        "snapshots",
        "wake",
    )

    def __init__(self, patterns: Sequence[str], max_lag: int) -> None:
        self.patterns = tuple(patterns)
        self.max_lag = max_lag
        self.wake = Wake()
        self.deliver: Deliver | None = None
        self.encode: Encode = _no_frame
        self.cursors: dict[ChannelLog, int] = {}
        self._allowance: dict[ChannelLog, int] = {}
        self.gap_channels: list[str] = []
        self.gap_cursor: str | None = None
        self.snapshots: dict[str, list[Event]] = {}
        self.closed_reason: str | None = None

    def matches(self, channel: str) -> bool:
        """True when one of the patterns matches ``channel``."""
        return any(pattern_matches(pattern, channel) for pattern in self.patterns)

    async def next_batch(self, limit: int = 512, timeout_s: float | None = None) -> list[Event]:
        """Wait for news, then take it: the one consuming loop of streams and alerts.

        Returns at once when already woken. Returns ``[]`` when woken for
        another reason (the caller's own: a heartbeat, a stop; or the broker
        ended the subscription: ``closed_reason``) or after ``timeout_s``. A
        full batch leaves the subscription woken, so the next call goes on.

        Raises:
            SubscriberLagging: as :meth:`take`.
        """
        wake = self.wake
        if not wake.is_set():
            if timeout_s is None:
                await wake.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout_s):
                        await wake.wait()
        self.deliver = None
        wake.clear()
        if self.closed_reason is not None:
            return []
        events = self.take(limit)
        if len(events) == limit:
            wake.set()
        return events

    def interrupt(self) -> None:
        """Make the pending (or next) :meth:`next_batch` return: the consumer has its own news."""
        self.deliver = None
        self.wake.set()

    def park(self, encode: Encode, deliver: Deliver) -> None:
        """Have the hub hand new events, encoded by ``encode``, to ``deliver`` until it wakes us."""
        self.encode = encode
        self.deliver = deliver

    def follow(self, log: ChannelLog, offset: int) -> None:
        """Start reading ``log`` at ``offset``."""
        self.cursors[log] = offset
        self._allowance[log] = self.max_lag + log.next_offset - offset
        log.subscribers.add(self)
        if offset < log.next_offset:
            self.deliver = None
            self.wake.set()

    def release(self) -> None:
        """Stop following every channel."""
        self.deliver = None
        for log in self.cursors:
            log.subscribers.discard(self)
        self.cursors.clear()
        self._allowance.clear()

    def kind_of(self, channel: str) -> str | None:
        """The kind of ``channel``, one this subscription follows (its log is among the cursors)."""
        return next((log.kind for log in self.cursors if log.name == channel), None)

    def too_far_behind(self) -> bool:
        """True when ``take`` would raise SubscriberLagging (for a stream blocked on its socket)."""
        return any(
            log.latest_value_key is None
            and (offset < log.first_offset or log.next_offset - offset > self._allowance[log])
            for log, offset in self.cursors.items()
        )

    def take(self, limit: int = 512) -> list[Event]:
        """Everything new on every channel (at most ``limit``), in broker order.

        A subscriber that starts behind (a resume) may catch up: its allowance
        is its starting backlog plus ``max_lag`` and only shrinks, so it is cut
        when it falls further behind, not while it catches up.

        Raises:
            SubscriberLagging: a channel that does not conflate is further ahead
                of this cursor than the allowance, or overwrote it.
        """
        ready = [(log, offset) for log, offset in self.cursors.items() if offset < log.next_offset]
        if not ready:
            return []
        if len(ready) == 1:
            log, offset = ready[0]
            events = self._run(log, offset, limit)
            if len(events) > limit:  # only a conflated run can be longer
                events = events[:limit]
            if events:
                self.cursors[log] = events[-1].offset + 1
        else:
            runs = [self._run(log, offset, limit) for log, offset in ready]
            events = list(islice(heapq.merge(*runs, key=_by_seq), limit))
            logs = {log.name: log for log, _offset in ready}
            for event in events:
                self.cursors[logs[event.channel]] = event.offset + 1
        for log, _offset in ready:
            backlog = log.next_offset - self.cursors[log]
            self._allowance[log] = min(self._allowance[log], backlog + self.max_lag)
        return events

    def _run(self, log: ChannelLog, offset: int, limit: int) -> list[Event]:
        behind = log.next_offset - offset
        if offset < log.first_offset or behind > self._allowance[log]:
            if log.latest_value_key is not None:
                return self._conflate(log, offset)
            raise SubscriberLagging(f"{behind} events behind on {log.name}")
        return log.slice(offset, min(log.next_offset, offset + limit))

    def _conflate(self, log: ChannelLog, offset: int) -> list[Event]:
        newest = {key: event for key, event in log.latest_by_key.items() if event.offset >= offset}
        events = sorted(newest.values(), key=_by_seq)
        self.cursors[log] = log.next_offset
        return events


def _no_frame(event: Event) -> bytes:
    return b""


def _by_seq(event: Event) -> int:
    return event.seq


@dataclass(frozen=True, slots=True)
class ChannelLimits:
    """Bounds on channels nobody declared (``limits.max_channels``, ``limits.channel_idle_ttl``)."""

    max_channels: int = 10_000
    idle_ttl_s: float = 7 * 86400.0


class Hub:
    """The channel rings and live subscriptions of one process.

    ``undeclared`` counts the channels that exist only because something was
    published to them (what ``limits.max_channels`` bounds); ``names`` keeps
    every channel name sorted so listings page without sorting.
    """

    def __init__(self, kinds: KindRegistry, history_size: int, max_lag: int) -> None:
        self.kinds = kinds
        self.history_size = history_size
        self.max_lag = max_lag
        self.logs: dict[str, ChannelLog] = {}
        self.names: list[str] = []
        self.undeclared = 0
        self.swept_seq = 0
        self.subscriptions: set[Subscription] = set()

    def log(self, channel: str, kind: str) -> ChannelLog:
        """The ring of ``channel``, created (and offered to matching subscribers) if new.

        A channel created after others were swept starts with their newest seq as
        dropped: a cursor from before the sweep may have missed events of an
        earlier channel of that name, so it gets a gap.
        """
        existing = self.logs.get(channel)
        if existing is not None:
            return existing
        latest_key = self.kinds.get(kind).view.latest_value_key
        created = ChannelLog(channel, kind, self.history_size, latest_key)
        created.dropped_seq = self.swept_seq
        self.logs[channel] = created
        insort(self.names, channel)
        self.undeclared += 1
        for subscription in self.subscriptions:
            if subscription.matches(channel):
                subscription.follow(created, 0)
        return created

    def mark_declared(self, log: ChannelLog) -> None:
        """``log`` was declared: it no longer counts against the limit and is never swept."""
        if not log.declared:
            log.declared = True
            self.undeclared -= 1

    def sweep(self, now: float, idle_ttl_s: float) -> list[ChannelLog]:
        """Drop undeclared channels with no subscriber and no event for ``idle_ttl_s``.

        Idleness is observed here, at each sweep (``now`` is the caller's clock,
        so a test passes any time it likes), not on the publish path: a channel
        goes at most one sweep interval after its time.
        """
        idle = []
        for log in self.logs.values():
            if log.declared:
                continue
            if log.subscribers or log.idle_since is None or log.seen_offset != log.next_offset:
                log.idle_since, log.seen_offset = now, log.next_offset
            elif now - log.idle_since >= idle_ttl_s:
                idle.append(log)
        for log in idle:
            self._drop(log)
        return idle

    def _drop(self, log: ChannelLog) -> None:
        del self.logs[log.name]
        del self.names[bisect_left(self.names, log.name)]
        self.undeclared -= 1
        last = log.last
        if last is not None:
            self.swept_seq = max(self.swept_seq, last.seq)

    def names_after(self, after: str | None) -> Iterator[str]:
        """Channel names in order, starting after ``after`` (from the first without it)."""
        start = 0 if after is None else bisect_right(self.names, after)
        return islice(self.names, start, None)

    def matching(self, patterns: Sequence[str]) -> list[ChannelLog]:
        """Existing channels matching any of ``patterns`` (no scan when none has a wildcard)."""
        if not any(is_pattern(pattern) for pattern in patterns):
            return [self.logs[name] for name in sorted(set(patterns)) if name in self.logs]
        return [
            self.logs[name]
            for name in self.names
            if any(pattern_matches(pattern, name) for pattern in patterns)
        ]

    def open(self, patterns: Sequence[str]) -> Subscription:
        """Register a subscription that has no cursors yet (the caller places them)."""
        subscription = Subscription(patterns, self.max_lag)
        self.subscriptions.add(subscription)
        return subscription

    def close(self, subscription: Subscription) -> None:
        """Forget ``subscription``; it stops being woken at once."""
        subscription.release()
        self.subscriptions.discard(subscription)

    def end_all(self, reason: str) -> None:
        """Mark every subscription closed and wake it (shutdown)."""
        for subscription in self.subscriptions:
            subscription.closed_reason = reason
            subscription.deliver = None
            subscription.wake.set()
