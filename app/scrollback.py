"""Paging through a channel's retained history: the log viewer's scrollback and its downloads.

Both walk the broker's retained events by cursor (an event id), so neither
depends on how far back retention reaches: a page of older lines costs one
bounded scan, a download is a stream of history pages.

Deliberate oddities:
- A filtered page scans back at most ``scan_limit`` events per request, even
  when it found fewer matches than wanted: its cursor then points at the
  oldest event *scanned*, not the oldest match, so the next page goes on from
  there and a rare match never makes one request walk the whole history.
  Issue 15's server-side search reuses :func:`older_page` unchanged.
- A download stops at the newest event that existed when it started: a busy
  channel would otherwise keep a download of "everything" open for ever.
  Events trimmed while it runs are skipped, never repeated (the history
  page after a trimmed cursor starts at the oldest retained event).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from app.broker.base import Broker
from app.events import Event

SCAN_BATCH = 1000
DOWNLOAD_BATCH = 1000

Accepts = Callable[[Event], bool]


@dataclass(frozen=True)
class OlderPage:
    """Matching events just before a cursor, oldest first.

    Attributes:
        events: the matches, oldest first.
        cursor: ``before`` for the next older page; None at the start of retention.
        gap: the cursor belongs to another epoch (a restart): start again from the newest.
    """

    events: list[Event]
    cursor: str | None
    gap: bool = False


async def older_page(
    broker: Broker,
    channel: str,
    before: str | None,
    accepts: Accepts,
    *,
    want: int,
    scan_limit: int,
) -> OlderPage:
    """Up to ``want`` events of ``channel`` before ``before`` that ``accepts`` keeps.

    Example (the viewer's "load older" row)::

        page = await older_page(broker, "log.app", "ab12-9000", keep, want=200, scan_limit=50_000)
        # page.events: up to 200 rows to insert above; page.cursor: the next request's before=
    """
    matches: list[Event] = []  # newest first
    cursor, scanned = before, 0
    while scanned < scan_limit:
        page = await broker.before(channel, cursor, SCAN_BATCH)
        if page.gap:
            return OlderPage([], None, gap=True)
        for event in reversed(page.events):
            scanned, cursor = scanned + 1, event.id
            if accepts(event):
                matches.append(event)
                if len(matches) == want:
                    return OlderPage(matches[::-1], cursor)
        if len(page.events) < SCAN_BATCH:
            return OlderPage(matches[::-1], None)
    return OlderPage(matches[::-1], cursor)


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
