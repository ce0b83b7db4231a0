"""memory:// — the embedded broker: one process, history in per-channel rings.

An in-process sequencer (a counter) in front of the local fan-out part
(:mod:`app.broker.local`). The epoch is drawn at start, so ids from a
previous run (a restart) are recognised as unknown and answered with a gap,
never misread as positions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from app.broker.base import BrokerStats, ChannelInfo, HistoryPage, Start, apply_state
from app.broker.hub import ChannelLimits
from app.broker.local import LocalFanout, SubscriptionScope, new_epoch
from app.events import Event, KindRegistry, State, format_event_id


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
        self.local = LocalFanout(kinds, history_size, max_lag, limits or ChannelLimits())
        self.local.epoch = new_epoch()
        self.stats = BrokerStats()  # nothing here can fail or reconnect: stays 0
        self._state: dict[str, str] = {}

    @property
    def epoch(self) -> str:
        """This incarnation's epoch (a restart draws another)."""
        return self.local.epoch

    async def start(self) -> None:
        """Nothing to connect to."""

    async def close(self) -> None:
        """End every live subscription."""
        self.local.end_all("shutdown")

    @property
    def ready(self) -> bool:
        """Always reachable."""
        return True

    async def declare(self, channel: str, kind: str) -> None:
        """Create ``channel`` with ``kind`` unless it exists with that kind already."""
        self.local.declare(channel, kind)

    async def kind_of(self, channel: str) -> str | None:
        """The channel's kind, None when unknown."""
        return self.local.kind_of(channel)

    async def publish(
        self, channel: str, kind: str, data: dict[str, Any], state: State | None = None
    ) -> Event:
        """Assign the next id and append; subscribers are woken before this returns."""
        local = self.local
        local.admit(channel)
        log = local.log(channel, kind)
        seq = local.seq + 1  # the sequencer: in one process the rings are the whole log
        event_id = format_event_id(local.epoch, seq)
        event = Event(event_id, channel, kind, time.time(), data, seq, log.next_offset)
        local.append(log, event)
        if state:
            await self.save_state(state)
        return event

    async def publish_many(
        self,
        channel: str,
        kind: str,
        items: Sequence[dict[str, Any]],
        state: State | None = None,
    ) -> list[Event]:
        """Publish ``items`` in order, ``state`` with the last."""
        events = [await self.publish(channel, kind, data) for data in items]
        if state and events:
            await self.save_state(state)
        return events

    async def load_state(self, prefix: str) -> dict[str, str]:
        """This process's state under ``prefix`` (memory:// keeps it until the process ends)."""
        return {key: value for key, value in self._state.items() if key.startswith(prefix)}

    async def save_state(self, state: State) -> None:
        """Store or (``None``) delete each key."""
        apply_state(self._state, state)

    def subscribe(self, patterns: Sequence[str], start: Start) -> SubscriptionScope:
        """Place cursors per ``start`` and follow; cursors are freed on exit."""
        return self.local.subscribe(patterns, start)

    async def history(
        self, channel: str, after: str | None, limit: int, since: float | None = None
    ) -> HistoryPage:
        """Retained events after ``after`` (and from ``since``); a gap when it is unknown."""
        return self.local.history(channel, after, limit, since)

    async def before(self, channel: str, before: str | None, limit: int) -> HistoryPage:
        """Retained events just before ``before``; empty at the start of retention."""
        return self.local.before(channel, before, limit)

    async def sweep(self, now: float) -> list[str]:
        """Drop the undeclared channels idle for ``limits.idle_ttl_s``."""
        return [log.name for log in self.local.sweep(now)]

    def channels(
        self,
        after: str | None = None,
        limit: int | None = None,
        visible: Callable[[str], bool] | None = None,
    ) -> list[ChannelInfo]:
        """Channels sorted by name, with subscriber count and newest id (one page of them)."""
        return self.local.channels(after, limit, visible)

    def subscriber_counts(self, channels: Iterable[str]) -> dict[str, int]:
        """Subscribers of each of ``channels`` that exists."""
        return self.local.subscriber_counts(channels)

    def follows(self) -> int:
        """Subscribers summed over every channel (each subscription's channel count)."""
        return self.local.follows()
