"""The local fan-out every broker is built on: rings, cursors, placement, paging.

A broker is two parts: how events are sequenced and stored (an in-process
counter for memory://; a Redis log and its fan-out reader for redis://), and
this part, which each broker holds (composition, never a subclass). Whatever
sequenced an event hands it to :meth:`LocalFanout.append`; subscribing,
replay, gaps, conflation, history pages, channel listings, limits and the
idle sweep are answered here, from this process's rings, the same way on
every backend.

Deliberate oddities:
- ``seq`` is the newest seq the rings hold. An id of this epoch past it is
  unknown here (a gap), never a position: a backend that learns of events
  later (redis://) waits for them before placing a cursor.
- :class:`SubscriptionScope` is a class, not ``@asynccontextmanager``: a
  suspended generator, its wrapper and the loop's async-generator bookkeeping
  cost about 600 bytes for as long as a stream is open, 3 % of an idle stream
  (docs/performance.md, S1).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Iterable, Sequence
from itertools import islice

from app.broker.base import ChannelInfo, ChannelLimit, HistoryPage, KindConflict, Start
from app.broker.hub import ChannelLimits, ChannelLog, Hub, Subscription
from app.events import Event, KindRegistry, format_event_id, is_pattern, parse_event_id

Settle = Callable[[str | None], Awaitable[None]]


def new_epoch() -> str:
    """A short random token that tells one broker incarnation (or deployment) from another."""
    return secrets.token_hex(4)


class SubscriptionScope:
    """The ``async with`` block of a broker's ``subscribe``: settle, place, and always free."""

    __slots__ = ("_local", "_patterns", "_settle", "_start", "_subscription")

    def __init__(
        self, local: LocalFanout, patterns: Sequence[str], start: Start, settle: Settle | None
    ) -> None:
        self._local = local
        self._patterns = patterns
        self._start = start
        self._settle = settle
        self._subscription: Subscription | None = None

    async def __aenter__(self) -> Subscription:
        if self._settle is not None:
            await self._settle(self._start.after)
        self._subscription = self._local.open(self._patterns, self._start)
        return self._subscription

    async def __aexit__(self, *exc_info: object) -> None:
        if self._subscription is not None:
            self._local.hub.close(self._subscription)
            self._subscription = None


class LocalFanout:
    """This process's rings and subscriptions, fed in seq order by the broker that holds it."""

    def __init__(
        self, kinds: KindRegistry, history_size: int, max_lag: int, limits: ChannelLimits
    ) -> None:
        self.kinds = kinds
        self.limits = limits
        self.hub = Hub(kinds, history_size, max_lag)
        self.epoch = ""
        self.seq = 0

    # -- what the sequencing part hands over -----------------------------------

    def log(self, channel: str, kind: str) -> ChannelLog:
        """The ring of ``channel`` (created if new); KindConflict if it has another kind."""
        log = self.hub.log(channel, kind)
        if log.kind != kind:
            raise KindConflict(channel, log.kind, kind)
        return log

    def admit(self, channel: str) -> None:
        """ChannelLimit when ``channel`` is new and the undeclared channels are at the limit."""
        if channel not in self.hub.logs and self.hub.undeclared >= self.limits.max_channels:
            raise ChannelLimit(channel, self.limits.max_channels)

    def declare(self, channel: str, kind: str) -> None:
        """Create ``channel`` with ``kind`` (KindConflict if it has another); never swept."""
        self.hub.mark_declared(self.log(channel, kind))

    def append(self, log: ChannelLog, event: Event) -> None:
        """Store ``event`` (the next seq, the channel's next offset) and wake its subscribers."""
        log.append(event)
        self.seq = event.seq

    def replace(self, hub: Hub, seq: int) -> None:
        """Serve from ``hub`` (rings loaded afresh) from now on; end the old subscriptions.

        Channels declared before stay declared, and a cursor from before a sweep
        still gets its gap.
        """
        hub.swept_seq = self.hub.swept_seq
        for name, log in hub.logs.items():
            if (before := self.hub.logs.get(name)) is not None and before.declared:
                hub.mark_declared(log)
        old, self.hub, self.seq = self.hub, hub, seq
        old.end_all("broker resynchronised")

    def empty_hub(self) -> Hub:
        """A hub like this one's, without channels (to load rings into before :meth:`replace`)."""
        return Hub(self.kinds, self.hub.history_size, self.hub.max_lag)

    # -- what subscribers and readers ask --------------------------------------

    def subscribe(
        self, patterns: Sequence[str], start: Start, settle: Settle | None = None
    ) -> SubscriptionScope:
        """Cursors placed per ``start`` (after ``settle``), freed when the block exits."""
        return SubscriptionScope(self, patterns, start, settle)

    def open(self, patterns: Sequence[str], start: Start) -> Subscription:
        """A subscription with its cursors placed; the caller must ``hub.close`` it."""
        subscription = self.hub.open(patterns)
        try:
            self._place(subscription, start)
        except BaseException:
            self.hub.close(subscription)
            raise
        return subscription

    def kind_of(self, channel: str) -> str | None:
        """The channel's kind, None when this process has no ring for it."""
        log = self.hub.logs.get(channel)
        return log.kind if log else None

    def history(
        self, channel: str, after: str | None, limit: int, since: float | None = None
    ) -> HistoryPage:
        """Retained events after ``after`` (and from ``since``); a gap when it is unknown."""
        log = self.hub.logs.get(channel)
        if log is None:
            return HistoryPage([], gap=False)
        after_seq = self.known_seq(after) if after is not None else None
        gap = after is not None and (after_seq is None or log.dropped_seq > after_seq)
        start = log.first_offset if after_seq is None or gap else log.offset_after(after_seq)
        if since is not None:
            start = max(start, log.offset_since(since))
        return HistoryPage(log.slice(start, min(log.next_offset, start + limit)), gap=gap)

    def before(self, channel: str, before: str | None, limit: int) -> HistoryPage:
        """Retained events just before ``before``; empty at the start of retention."""
        log = self.hub.logs.get(channel)
        if log is None:
            return HistoryPage([], gap=before is not None and self.known_seq(before) is None)
        stop = log.next_offset
        if before is not None:
            before_seq = self.known_seq(before)
            if before_seq is None:
                return HistoryPage([], gap=True)
            stop = log.offset_after(before_seq - 1)
        return HistoryPage(log.slice(max(log.first_offset, stop - limit), stop), gap=False)

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

    def sweep(self, now: float) -> list[ChannelLog]:
        """Drop the undeclared channels idle for ``limits.idle_ttl_s``; their rings."""
        return self.hub.sweep(now, self.limits.idle_ttl_s)

    def end_all(self, reason: str) -> None:
        """End every live subscription (shutdown)."""
        self.hub.end_all(reason)

    def known_seq(self, event_id: str) -> int | None:
        """The seq of an id of this epoch that the rings have reached, None for anything else."""
        parsed = parse_event_id(event_id)
        if parsed is None or parsed[0] != self.epoch or parsed[1] > self.seq:
            return None
        return parsed[1]

    def _place(self, subscription: Subscription, start: Start) -> None:
        logs = self.hub.matching(subscription.patterns)
        if start.after is None:
            for log in logs:
                self._fresh(subscription, log, start)
            return
        after_seq = self.known_seq(start.after)
        if after_seq is None:
            subscription.gap_channels = sorted(
                {log.name for log in logs} | {p for p in subscription.patterns if not is_pattern(p)}
            )
        for log in logs:
            lost = after_seq is not None and (
                log.dropped_seq > after_seq or self._too_far_for_snapshot(log, after_seq, start)
            )
            if lost:
                subscription.gap_channels.append(log.name)
            if after_seq is None or lost:
                self._gap(subscription, log, start)
            else:
                subscription.follow(log, log.offset_after(after_seq))
        if subscription.gap_channels:
            subscription.gap_cursor = format_event_id(self.epoch, self._replay_from(subscription))

    def _too_far_for_snapshot(self, log: ChannelLog, after_seq: int, start: Start) -> bool:
        """A snapshot stream (html) more than its panel's cap behind: the replay would only
        feed rows the page's DOM cap deletes, and a page that fell behind and was cut for
        lagging would replay the same backlog again on every reconnect (its new EventSource
        names the page's old cursor). It gets a gap and a fresh snapshot instead."""
        if not start.snapshot:
            return False
        return log.next_offset - log.offset_after(after_seq) > self.kinds.get(log.kind).view.cap

    def _replay_from(self, subscription: Subscription) -> int:
        """The seq just before the first event the subscription replays (or the newest)."""
        first = min(
            (
                log.get(offset).seq
                for log, offset in subscription.cursors.items()
                if offset < log.next_offset
            ),
            default=self.seq + 1,
        )
        return first - 1

    def _fresh(self, subscription: Subscription, log: ChannelLog, start: Start) -> None:
        if start.snapshot:
            snapshot_size = self.kinds.get(log.kind).view.snapshot_size
            subscription.snapshots[log.name] = log.recent(snapshot_size)
            subscription.follow(log, log.next_offset)
        elif start.since is not None:
            subscription.follow(log, log.offset_since(start.since))
        elif start.history == 0 and log.latest_value_key is not None:
            subscription.snapshots[log.name] = log.recent(0)
            subscription.follow(log, log.next_offset)
        else:
            subscription.follow(log, max(log.first_offset, log.next_offset - start.history))

    def _gap(self, subscription: Subscription, log: ChannelLog, start: Start) -> None:
        if start.snapshot:
            self._fresh(subscription, log, start)
        else:
            subscription.follow(log, log.first_offset)


def _info(log: ChannelLog) -> ChannelInfo:
    return ChannelInfo(
        name=log.name,
        kind=log.kind,
        subscribers=len(log.subscribers),
        last_id=last.id if (last := log.last) else None,
        retained=log.retained,
    )
