"""Paging through a channel's retained history: the log viewer's scrollback and its downloads.

Both walk the broker's retained events by cursor (an event id), so neither
depends on how far back retention reaches: a page of older lines costs one
bounded scan, a download is a stream of history pages.

Deliberate oddities:
- A filtered page scans back at most ``scan_limit`` events (and at most
  ``time_limit_s`` seconds) per request, even when it found fewer matches than
  wanted: its cursor then points at the oldest event *scanned*, not the oldest
  match, and ``searched_to`` says how far back that was, so the next page goes
  on from there and a rare match never makes one request walk the whole
  history. The viewer chains those pages (a "searching older…" row), so a
  search still reaches the start of retention, newest first. On sqlite:// the
  pattern runs inside the database (:class:`LineSearch`), so a page scans
  far more rows in the same time; only the time limit bounds it.
- A download stops at the newest event that existed when it started: a busy
  channel would otherwise keep a download of "everything" open for ever.
  Events trimmed while it runs are skipped, never repeated (the history
  page after a trimmed cursor starts at the oldest retained event).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from app.broker.base import Broker, LineSearch
from app.events import Event, format_event_id, parse_event_id

SCAN_BATCH = 1000
STORE_SCAN = 20_000  # rows one step of a store-side search scans (a few tens of ms)
DOWNLOAD_BATCH = 1000

Accepts = Callable[[Event], bool]


@dataclass(frozen=True)
class OlderPage:
    """Matching events just before a cursor, oldest first.

    Attributes:
        events: the matches, oldest first.
        cursor: ``before`` for the next older page; None at the start of retention.
        gap: the cursor belongs to another epoch (a restart): start again from the newest.
        searched_to: when the scan budget ended the page early, the time of the
            oldest event scanned (the search goes on from ``cursor``); else None.
    """

    events: list[Event]
    cursor: str | None
    gap: bool = False
    searched_to: float | None = None


@dataclass(frozen=True)
class Around:
    """One retained event and its neighbours on its channel, oldest first."""

    before: list[Event]
    event: Event
    after: list[Event]


def line_time(event: Event) -> float:
    """When ``event``'s line says it was written, else when it was read (as its row shows)."""
    stated = event.data.get("ts")
    return float(stated) if isinstance(stated, int | float) else event.time


async def older_page(
    broker: Broker,
    channel: str,
    before: str | None,
    accepts: Accepts,
    *,
    want: int,
    scan_limit: int,
    time_limit_s: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    line_pattern: Any = None,
) -> OlderPage:
    """Up to ``want`` events of ``channel`` before ``before`` that ``accepts`` keeps.

    ``line_pattern``: the compiled ``q`` of a log channel; a broker that can search
    lines itself (:class:`LineSearch`, sqlite://) then narrows the scan to them.

    Example (the viewer's "load older" row)::

        page = await older_page(broker, "log.app", "ab12-9000", keep, want=200, scan_limit=50_000)
        # page.events: up to 200 rows to insert above; page.cursor: the next request's before=
    """
    if line_pattern is not None and isinstance(broker, LineSearch):
        return await _store_search(
            broker, channel, before, accepts, line_pattern, want, time_limit_s, clock
        )
    matches: list[Event] = []  # newest first
    cursor, scanned, oldest = before, 0, None
    deadline = None if time_limit_s is None else clock() + time_limit_s
    while scanned < scan_limit and (deadline is None or scanned == 0 or clock() < deadline):
        page = await broker.before(channel, cursor, SCAN_BATCH)
        if page.gap:
            return OlderPage([], None, gap=True)
        for event in reversed(page.events):
            scanned, cursor, oldest = scanned + 1, event.id, event
            if accepts(event):
                matches.append(event)
                if len(matches) == want:
                    return OlderPage(matches[::-1], cursor)
        if len(page.events) < SCAN_BATCH:
            return OlderPage(matches[::-1], None)
    return OlderPage(matches[::-1], cursor, searched_to=line_time(oldest) if oldest else None)


async def _store_search(
    broker: LineSearch,
    channel: str,
    before: str | None,
    accepts: Accepts,
    line_pattern: Any,
    want: int,
    time_limit_s: float | None,
    clock: Callable[[], float],
) -> OlderPage:
    """:func:`older_page` with the line pattern run by the store, ``STORE_SCAN`` rows a step.

    The store only narrows: ``accepts`` (the level, and the pattern again) decides.
    Bounded by ``time_limit_s`` alone: a step scans ten thousand rows in milliseconds.
    """
    matches: list[Event] = []  # newest first
    cursor, searched_to = before, None
    deadline = None if time_limit_s is None else clock() + time_limit_s
    while searched_to is None or deadline is None or clock() < deadline:
        scan = await broker.scan_lines(channel, cursor, line_pattern, STORE_SCAN)
        if scan is None:
            return OlderPage([], None, gap=True)
        for event in reversed(scan.events):
            if accepts(event):
                matches.append(event)
                if len(matches) == want:
                    return OlderPage(matches[::-1], event.id)
        if scan.end or scan.oldest_id is None:
            return OlderPage(matches[::-1], None)
        cursor, searched_to = scan.oldest_id, scan.oldest_time
    return OlderPage(matches[::-1], cursor, searched_to=searched_to)


async def around(broker: Broker, channel: str, event_id: str, context: int) -> Around | None:
    """The event ``event_id`` of ``channel`` with up to ``context`` events either side.

    None when that event is not retained (trimmed, another epoch, another
    channel's, or never an id). Ids are ``<epoch>-<seq>`` on every broker, so
    the page just after the id one below it starts with the event itself.
    """
    parsed = parse_event_id(event_id)
    if parsed is None or parsed[1] < 1:
        return None
    epoch, seq = parsed
    newer = await broker.history(channel, format_event_id(epoch, seq - 1), context + 1)
    if not newer.events or newer.events[0].id != event_id:
        return None
    older = await broker.before(channel, event_id, context) if context else None
    return Around(older.events if older else [], newer.events[0], newer.events[1:])


async def retained(broker: Broker, channel: str, accepts: Accepts) -> AsyncIterator[list[Event]]:
    """Every retained event of ``channel`` that ``accepts`` keeps, oldest first, page by page.

    Ends at the newest event that existed when the walk began.
    """
    newest = await broker.before(channel, None, 1)
    if not newest.events:
        return
    last_seq = newest.events[-1].seq
    after: str | None = None
    while True:
        page = await broker.history(channel, after, DOWNLOAD_BATCH)
        events = [event for event in page.events if event.seq <= last_seq]
        kept = [event for event in events if accepts(event)]
        if kept:
            yield kept
        if len(events) < DOWNLOAD_BATCH:
            return
        after = events[-1].id
