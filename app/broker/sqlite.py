"""sqlite:// — the embedded durable broker: a SQLite log in front of the local fan-out.

A publish takes the next seq at once (on the loop, so ids follow publish
order), joins the batch the commit task writes next, and returns only once
that batch is committed (group commit: one transaction per batch, off the
loop). Committed events are then handed to the local fan-out part
(:mod:`app.broker.local`) in seq order, so a subscriber never sees an event
a crash could take back. The epoch and the last seq live in the database: an
id from before a restart or a crash is still a position.

Deliberate oddities:
- offsets of events not yet committed are counted in ``_next_offset``,
  ahead of the ring; a failed batch fails everything queued behind it too and
  forgets those counts, so no offset or seq is ever handed out twice;
- a failed commit (disk full, I/O error) is BrokerUnavailable (503) for its
  publishers; the next batch tries again, so it recovers when space returns.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from app.broker.base import (
    BrokerStats,
    BrokerUnavailable,
    ChannelInfo,
    HistoryPage,
    LineScan,
    Start,
)
from app.broker.hub import ChannelLimits, ChannelLog
from app.broker.local import LocalFanout, SubscriptionScope
from app.broker.sqlite_store import Retention, SqliteLog, database_path
from app.events import Event, KindRegistry, State, format_event_id, parse_event_id

logger = logging.getLogger(__name__)

TRIM_INTERVAL_S = 10.0

T = TypeVar("T")


@dataclass
class _Pending:
    """One publish waiting for its batch's commit."""

    log: ChannelLog
    event: Event
    done: asyncio.Future[None]
    state: State | None = None


class SqliteBroker:
    """Durable single-process broker; see :class:`app.broker.base.Broker` for the contract."""

    def __init__(
        self,
        url: str,
        kinds: KindRegistry,
        retention: Retention,
        max_lag: int,
        limits: ChannelLimits | None = None,
        *,
        fsync: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = database_path(url)
        self.kinds = kinds
        self.retention = retention
        self.fsync = fsync
        self.clock = clock
        self.local = LocalFanout(kinds, retention.history, max_lag, limits or ChannelLimits())
        self.stats = BrokerStats()
        self.store: SqliteLog | None = None
        self._queue: list[_Pending] = []
        self._queued = asyncio.Event()
        self._next_seq = 0
        self._next_offset: dict[ChannelLog, int] = {}
        self._committer: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # start()'s (Python 3.11: a getpid
        # per get_running_loop, which a publish would pay)
        self._last_trim = 0.0
        self._failing = False
        self._closing = False
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-broker")

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        """Run a store call on the broker's one database thread (never on the loop)."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, function, *args)

    @property
    def epoch(self) -> str:
        """The database's epoch: the same across restarts."""
        return self.local.epoch

    async def start(self) -> None:
        """Open the database, load the rings from it and start the commit task."""
        self.store = store = await self._call(lambda: SqliteLog(self.path, fsync=self.fsync))
        self.local.epoch = store.epoch
        self._next_seq = store.last_seq
        loaded = await self._call(self._load, store)
        hub = self.local.empty_hub()
        for name, kind, events in list(loaded):
            if kind not in self.kinds:  # a plugin's kind, the plugin gone: keep it on disk only
                logger.warning(
                    "sqlite broker: channel %r has unknown kind %r: not loaded", name, kind
                )
                loaded.remove((name, kind, events))
                continue
            ring = hub.log(name, kind)
            if events:
                first = events[0]
                ring.start_at(first.offset, first.seq - 1 if first.offset else 0)
        for event in sorted((e for _, _, events in loaded for e in events), key=lambda e: e.seq):
            hub.logs[event.channel].append(event)
        self.local.replace(hub, store.last_seq)
        self._loop = asyncio.get_running_loop()
        self._committer = asyncio.create_task(self._commit_loop(), name="sqlite-commit")

    async def close(self) -> None:
        """Commit what is queued, stop, end every subscription and close the database."""
        if self._committer is not None:
            self._closing = True
            self._queued.set()
            await self._committer  # it returns once the queue is committed (or refused)
            self._committer = None
        self.local.end_all("shutdown")
        if self.store is not None:
            await self._call(self.store.close)
            self.store = None
        self._thread.shutdown(wait=False)

    @property
    def ready(self) -> bool:
        """False while commits fail (disk full, I/O error)."""
        return self.store is not None and not self._failing

    async def declare(self, channel: str, kind: str) -> None:
        """Create ``channel`` with ``kind`` unless it exists with that kind already."""
        self.local.declare(channel, kind)

    async def kind_of(self, channel: str) -> str | None:
        """The channel's kind, None when unknown."""
        return self.local.kind_of(channel)

    async def publish(
        self, channel: str, kind: str, data: dict[str, Any], state: State | None = None
    ) -> Event:
        """Assign the next id, and return once the event (and ``state``) is committed."""
        pending = self._enqueue(channel, kind, data)
        pending.state = state
        await pending.done  # cancelled (the caller left): committed all the same
        return pending.event

    async def publish_many(
        self,
        channel: str,
        kind: str,
        items: Sequence[dict[str, Any]],
        state: State | None = None,
    ) -> list[Event]:
        """Publish ``items`` in order in one commit: all of them, or none (an NDJSON batch)."""
        pendings = [self._enqueue(channel, kind, data) for data in items]
        if pendings:
            pendings[-1].state = state
        done = asyncio.gather(*(pending.done for pending in pendings), return_exceptions=True)
        for outcome in await done:  # a batch fails as a whole: one error
            if isinstance(outcome, BaseException):
                raise outcome
        return [pending.event for pending in pendings]

    def _enqueue(self, channel: str, kind: str, data: dict[str, Any]) -> _Pending:
        """Give the event its id and offset and queue it for the next commit."""
        if self._committer is None or self._loop is None or self._closing:
            raise BrokerUnavailable("the sqlite broker is not running")
        local = self.local
        local.admit(channel)
        log = local.log(channel, kind)
        offset = self._next_offset.get(log, log.next_offset)
        self._next_offset[log] = offset + 1
        self._next_seq += 1
        event_id = format_event_id(local.epoch, self._next_seq)
        event = Event(event_id, channel, kind, self.clock(), data, self._next_seq, offset)
        pending = _Pending(log, event, self._loop.create_future())
        self._queue.append(pending)
        self._queued.set()
        return pending

    async def load_state(self, prefix: str) -> dict[str, str]:
        """The committed state under ``prefix``."""
        if self.store is None:
            raise BrokerUnavailable("the sqlite broker is not running")
        return await self._call(self.store.load_state, prefix)

    async def save_state(self, state: State) -> None:
        """Commit ``state`` in a transaction of its own (on the database thread, in turn)."""
        if self.store is None:
            raise BrokerUnavailable("the sqlite broker is not running")
        try:
            await self._call(self.store.commit, [], self.retention.keep, state)
        except sqlite3.Error as error:
            self.stats.errors += 1
            raise BrokerUnavailable(f"the database refused: {error}") from None

    def subscribe(self, patterns: Sequence[str], start: Start) -> SubscriptionScope:
        """Place cursors per ``start`` and follow; cursors are freed on exit."""
        return self.local.subscribe(patterns, start)

    async def history(
        self, channel: str, after: str | None, limit: int, since: float | None = None
    ) -> HistoryPage:
        """Retained events after ``after``: from the rings, or the database beyond them.

        ``since`` is answered from the ring (the database beyond it: not yet).
        """
        page = self.local.history(channel, after, limit, since)
        if not page.gap or after is None or self.store is None or since is not None:
            return page
        parsed = parse_event_id(after)
        if parsed is None or parsed[0] != self.epoch or parsed[1] > self.local.seq:
            return page
        store = self.store
        events, trimmed = await self._call(store.after, channel, parsed[1], limit)
        return HistoryPage(events, gap=trimmed) if events else page

    async def before(self, channel: str, before: str | None, limit: int) -> HistoryPage:
        """Retained events just before ``before``: from the ring, then the database beyond it."""
        page = self.local.before(channel, before, limit)
        if page.gap or self.store is None:
            return page
        first = page.events[0].seq if page.events else None
        if before is not None and first is None:
            parsed = parse_event_id(before)
            first = parsed[1] if parsed is not None and parsed[0] == self.epoch else None
            if first is None:
                return page
        wanted = limit - len(page.events)
        if wanted <= 0:
            return page
        store = self.store
        older = await self._call(store.before, channel, first, wanted)
        return HistoryPage([*older, *page.events], gap=False)

    async def scan_lines(
        self, channel: str, before: str | None, pattern: Any, count: int
    ) -> LineScan | None:
        """The log search's step, run in the database thread (:class:`LineSearch`).

        The database alone answers: every event the rings hold is committed there first.
        """
        seq = None
        if before is not None:
            parsed = parse_event_id(before)
            if parsed is None or parsed[0] != self.epoch or self.store is None:
                return None
            seq = parsed[1]
        if self.store is None:
            return None
        events, oldest, end = await self._call(self.store.scan_lines, channel, seq, count, pattern)
        if oldest is None:
            return LineScan(events, None, None, True)
        return LineScan(events, format_event_id(self.epoch, oldest[0]), oldest[1], end)

    async def sweep(self, now: float) -> list[str]:
        """Drop the undeclared channels idle for ``limits.idle_ttl_s``, here and on disk."""
        names = [log.name for log in self.local.sweep(now)]
        if names and self.store is not None:
            store = self.store
            await self._call(store.drop_channels, names)
        return names

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

    async def trim(self) -> int:
        """Apply ``broker.retention`` and ``broker.max_bytes`` now; events deleted."""
        if self.store is None:
            return 0
        return await self._call(self.store.trim, self.retention, self.clock())

    # -- the commit path ---------------------------------------------------------

    async def _commit_loop(self) -> None:
        while True:
            await self._queued.wait()
            self._queued.clear()
            batch, self._queue = self._queue, []
            if batch:
                await self._commit(batch)
            if self._closing and not self._queue:
                return
            if self.clock() - self._last_trim >= TRIM_INTERVAL_S:
                self._last_trim = self.clock()
                try:
                    await self.trim()
                except sqlite3.Error as error:
                    logger.warning("sqlite broker: trimming failed: %s", error)

    async def _commit(self, batch: list[_Pending]) -> None:
        store = self.store
        assert store is not None
        try:
            state = {key: value for p in batch if p.state for key, value in p.state.items()}
            await self._call(store.commit, [p.event for p in batch], self.retention.keep, state)
        except Exception as error:  # disk full, I/O error: refused, never a dead commit task
            self._fail(batch, error)
            return
        if self._failing:
            logger.warning("sqlite broker: commits succeed again")
        self._failing = False
        for pending in batch:
            self.local.append(pending.log, pending.event)
            if self._next_offset.get(pending.log) == pending.log.next_offset:
                del self._next_offset[pending.log]
            if not pending.done.done():
                pending.done.set_result(None)

    def _fail(self, batch: list[_Pending], error: Exception) -> None:
        """Refuse ``batch`` and everything queued behind it; hand out its seqs and offsets again."""
        self.stats.errors += 1
        if not self._failing:
            logger.error("sqlite broker: commit failed: %s", error)
        self._failing = True
        refused, self._queue = batch + self._queue, []
        self._next_offset.clear()
        self._next_seq = self.local.seq
        for pending in refused:
            if not pending.done.done():
                pending.done.set_exception(BrokerUnavailable(f"the database refused: {error}"))

    def _load(self, store: SqliteLog) -> list[tuple[str, str, list[Event]]]:
        return [
            (name, kind, store.newest(name, self.retention.history))
            for name, kind in store.channels()
        ]
