"""memory:// — the embedded broker: one process, history in per-channel rings.

The epoch is drawn at start, so ids from a previous run (a restart) are
recognised as unknown and answered with a gap, never misread as positions.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from itertools import islice
from typing import Any

from app.broker.base import ChannelInfo, ChannelLimit, HistoryPage, KindConflict, Start
from app.broker.hub import ChannelLimits, ChannelLog, Hub, Subscription
from app.events import Event, KindRegistry, format_event_id, is_pattern, parse_event_id


class SubscriptionScope:
    """The ``async with`` block of :meth:`MemoryBroker.subscribe`.

    Deliberately a class, not ``@asynccontextmanager``: a suspended generator,
    its wrapper and the loop's async-generator bookkeeping cost about 600 bytes
    for as long as a stream is open, 3 % of an idle stream (docs/performance.md, S1).
    """

    __slots__ = ("_broker", "_patterns", "_start", "_subscription")

    def __init__(self, broker: MemoryBroker, patterns: Sequence[str], start: Start) -> None:
        self._broker = broker
        self._patterns = patterns
        self._start = start
        self._subscription: Subscription | None = None

    async def __aenter__(self) -> Subscription:
        self._subscription = await self._broker.open_subscription(self._patterns, self._start)
        return self._subscription

    async def __aexit__(self, *exc_info: object) -> None:
        if self._subscription is not None:
            self._broker.hub.close(self._subscription)
            self._subscription = None


def _info(log: ChannelLog) -> ChannelInfo:
    return ChannelInfo(
        name=log.name,
        kind=log.kind,
        subscribers=len(log.subscribers),
        last_id=last.id if (last := log.last) else None,
        retained=log.retained,
    )


def new_epoch() -> str:
    """A short random token that tells one broker incarnation from another."""
    return secrets.token_hex(4)


class MemoryBroker:
    """In-process broker; see :class:`app.broker.base.Broker` for the contract."""

    def __init__(
        self,
        kinds: KindRegistry,
        history_size: int,
        max_lag: int,
        limits: ChannelLimits | None = None,
    ) -> None:
        self.kinds = kinds
        self.epoch = new_epoch()
        self.hub = Hub(kinds, history_size, max_lag)
        self.limits = limits or ChannelLimits()
        self._seq = 0

    async def start(self) -> None:
        """Nothing to connect to."""

    async def close(self) -> None:
        """End every live subscription."""
        self.hub.end_all("shutdown")

    @property
    def ready(self) -> bool:
        """Always reachable."""
        return True

    async def declare(self, channel: str, kind: str) -> None:
        """Create ``channel`` with ``kind`` unless it exists with that kind already."""
        self.hub.mark_declared(self._log(channel, kind))

    async def kind_of(self, channel: str) -> str | None:
        """The channel's kind, None when unknown."""
        log = self.hub.logs.get(channel)
        return log.kind if log else None

    async def publish(self, channel: str, kind: str, data: dict[str, Any]) -> Event:
        """Assign the next id and append; subscribers are woken before this returns."""
        self.admit(channel)
        log = self._log(channel, kind)
        self._seq += 1
        event = Event(
            id=format_event_id(self.epoch, self._seq),
            channel=channel,
            kind=kind,
            time=time.time(),
            data=data,
            seq=self._seq,
            offset=log.next_offset,
        )
        log.append(event)
        return event

    def subscribe(self, patterns: Sequence[str], start: Start) -> SubscriptionScope:
        """Place cursors per ``start`` and follow; cursors are freed on exit."""
        return SubscriptionScope(self, patterns, start)

    async def open_subscription(self, patterns: Sequence[str], start: Start) -> Subscription:
        """A subscription with its cursors placed; the caller must ``hub.close`` it."""
        subscription = self.hub.open(patterns)
        try:
            self._place(subscription, start)
        except BaseException:
            self.hub.close(subscription)
            raise
        return subscription

    async def history(self, channel: str, after: str | None, limit: int) -> HistoryPage:
        """Retained events after ``after``; a gap (from the oldest) when it is unknown."""
        log = self.hub.logs.get(channel)
        if log is None:
            return HistoryPage([], gap=False)
        after_seq = self._known_seq(after) if after is not None else None
        gap = after is not None and (after_seq is None or log.dropped_seq > after_seq)
        start = log.first_offset if after_seq is None or gap else log.offset_after(after_seq)
        return HistoryPage(log.slice(start, min(log.next_offset, start + limit)), gap=gap)

    async def before(self, channel: str, before: str | None, limit: int) -> HistoryPage:
        """Retained events just before ``before``; empty at the start of retention."""
        log = self.hub.logs.get(channel)
        if log is None:
            return HistoryPage([], gap=before is not None and self._known_seq(before) is None)
        stop = log.next_offset
        if before is not None:
            before_seq = self._known_seq(before)
            if before_seq is None:
                return HistoryPage([], gap=True)
            stop = log.offset_after(before_seq - 1)
        return HistoryPage(log.slice(max(log.first_offset, stop - limit), stop), gap=False)

    def admit(self, channel: str) -> None:
        """ChannelLimit when ``channel`` is new and the undeclared channels are at the limit."""
        if channel not in self.hub.logs and self.hub.undeclared >= self.limits.max_channels:
            raise ChannelLimit(channel, self.limits.max_channels)

    async def sweep(self, now: float) -> list[str]:
        """Drop the undeclared channels idle for ``limits.idle_ttl_s``."""
        return [log.name for log in self.hub.sweep(now, self.limits.idle_ttl_s)]

    def channels(
        self,
        after: str | None = None,
        limit: int | None = None,
        visible: Callable[[str], bool] | None = None,
    ) -> list[ChannelInfo]:
        """Channels sorted by name, with subscriber count and newest id (one page of them)."""
        names = self.hub.names_after(after)
        if visible is not None:
            names = filter(visible, names)
        return [_info(self.hub.logs[name]) for name in islice(names, limit)]

    def subscriber_counts(self, channels: Iterable[str]) -> dict[str, int]:
        """Subscribers of each of ``channels`` that exists."""
        logs = self.hub.logs
        return {name: len(logs[name].subscribers) for name in channels if name in logs}

    def follows(self) -> int:
        """Subscribers summed over every channel (each subscription's channel count)."""
        return sum(len(subscription.cursors) for subscription in self.hub.subscriptions)

    def _log(self, channel: str, kind: str) -> ChannelLog:
        log = self.hub.log(channel, kind)
        if log.kind != kind:
            raise KindConflict(channel, log.kind, kind)
        return log

    def _known_seq(self, event_id: str) -> int | None:
        """The seq of one of this incarnation's ids, None for anything else."""
        parsed = parse_event_id(event_id)
        if parsed is None or parsed[0] != self.epoch or parsed[1] > self._seq:
            return None
        return parsed[1]

    def _place(self, subscription: Subscription, start: Start) -> None:
        logs = self.hub.matching(subscription.patterns)
        if start.after is None:
            for log in logs:
                self._fresh(subscription, log, start)
            return
        after_seq = self._known_seq(start.after)
        if after_seq is None:
            subscription.gap_channels = sorted(
                {log.name for log in logs} | {p for p in subscription.patterns if not is_pattern(p)}
            )
        for log in logs:
            if after_seq is not None and log.dropped_seq > after_seq:
                subscription.gap_channels.append(log.name)
            if after_seq is None or log.dropped_seq > after_seq:
                self._gap(subscription, log, start)
            else:
                subscription.follow(log, log.offset_after(after_seq))

    def _fresh(self, subscription: Subscription, log: ChannelLog, start: Start) -> None:
        if start.snapshot:
            snapshot_size = self.kinds.get(log.kind).snapshot_size
            subscription.snapshots[log.name] = log.recent(snapshot_size)
            subscription.follow(log, log.next_offset)
        else:
            subscription.follow(log, max(log.first_offset, log.next_offset - start.history))

    def _gap(self, subscription: Subscription, log: ChannelLog, start: Start) -> None:
        if start.snapshot:
            self._fresh(subscription, log, start)
        else:
            subscription.follow(log, log.first_offset)
