"""Paging back through retained history (the viewer's scrollback) and walking it (downloads)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app import scrollback
from app.broker.base import Broker, LineSearch
from app.events import Event, KindRegistry
from app.filters import EventFilter, compile_user_regex
from app.scrollback import SCAN_BATCH, line_time, older_page, retained
from tests.broker.conftest import build_broker


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    created = build_broker("memory://", history=5000)
    await created.start()
    yield created
    await created.close()


async def publish_lines(broker: Broker, count: int, stated: float | None = None) -> list[Event]:
    """``count`` lines; with ``stated``, line n states it was written at ``stated + n``."""
    return [
        await broker.publish("log.app", "log", line_data(f"line {n}", stated, n))
        for n in range(count)
    ]


def line_data(line: str, stated: float | None, n: int) -> dict[str, Any]:
    data: dict[str, Any] = {"line": line, "file": "app.log"}
    if stated is not None:
        data["ts"] = stated + n
    return data


def every(event: Event) -> bool:
    return True


def lines(events: list[Event]) -> list[str]:
    return [event.data["line"] for event in events]


async def test_pages_back_to_the_start_of_retention(broker: Broker) -> None:
    published = await publish_lines(broker, 450)
    cursor: str | None = None
    pages = []
    while True:
        page = await older_page(broker, "log.app", cursor, every, want=200, scan_limit=10_000)
        pages.append(lines(page.events))
        if page.cursor is None:
            break
        cursor = page.cursor
    assert [len(page) for page in pages] == [200, 200, 50, 0][: len(pages)]
    assert [line for page in reversed(pages) for line in page] == lines(published)


async def test_a_filtered_page_scans_at_most_its_limit_and_goes_on_from_there(
    broker: Broker,
) -> None:
    published = await publish_lines(broker, 3 * SCAN_BATCH)
    rare = {0, 1500}  # one match per half

    def keep(event: Event) -> bool:
        return event.offset in rare

    first = await older_page(broker, "log.app", None, keep, want=10, scan_limit=SCAN_BATCH)
    assert (first.events, first.cursor) == ([], published[2 * SCAN_BATCH].id)
    second = await older_page(broker, "log.app", first.cursor, keep, want=10, scan_limit=SCAN_BATCH)
    assert lines(second.events) == ["line 1500"]
    assert second.cursor == published[SCAN_BATCH].id
    last = await older_page(broker, "log.app", second.cursor, keep, want=10, scan_limit=SCAN_BATCH)
    assert (lines(last.events), last.cursor) == (["line 0"], published[0].id)
    start = await older_page(broker, "log.app", last.cursor, keep, want=10, scan_limit=SCAN_BATCH)
    assert (start.events, start.cursor) == ([], None)


async def test_a_cursor_of_another_epoch_is_a_gap(broker: Broker) -> None:
    await publish_lines(broker, 3)
    page = await older_page(broker, "log.app", "zz99-2", every, want=10, scan_limit=100)
    assert (page.events, page.cursor, page.gap) == ([], None, True)


async def test_retained_walks_everything_up_to_the_newest_at_the_start(broker: Broker) -> None:
    published = await publish_lines(broker, 2500)
    walked: list[Event] = []
    async for batch in retained(broker, "log.app", lambda e: e.offset % 2 == 0):
        walked += batch
        if len(walked) < 10:  # published during the walk: not part of it
            await publish_lines(broker, 5)
    assert lines(walked) == lines(published[::2])


async def test_a_page_that_runs_out_of_time_says_how_far_back_it_searched(broker: Broker) -> None:
    published = await publish_lines(broker, 3 * SCAN_BATCH, stated=1.7e9)
    ticks = iter(range(1000))  # each look at the clock is one second later

    def clock() -> float:
        return float(next(ticks))

    page = await older_page(
        broker, "log.app", None, lambda e: False, want=10, scan_limit=10**6,
        time_limit_s=1.5, clock=clock,
    )  # fmt: skip
    assert page.events == [] and page.cursor == published[SCAN_BATCH].id
    assert page.searched_to == 1.7e9 + SCAN_BATCH  # the time the line states, as its row shows
    rest = await older_page(broker, "log.app", page.cursor, every, want=10**4, scan_limit=10**6)
    assert (len(rest.events), rest.cursor, rest.searched_to) == (SCAN_BATCH, None, None)


def test_a_line_time_is_the_one_the_line_states_else_when_it_was_read() -> None:
    stated = Event("e-1", "log.app", "log", 1.8e9, {"line": "x", "ts": 1.7e9}, 1, 0)
    unstated = Event("e-2", "log.app", "log", 1.8e9, {"line": "x"}, 2, 1)
    assert (line_time(stated), line_time(unstated)) == (1.7e9, 1.8e9)


async def test_a_full_page_is_no_continuation(broker: Broker) -> None:
    await publish_lines(broker, 50)
    page = await older_page(broker, "log.app", None, every, want=10, scan_limit=20)
    assert len(page.events) == 10 and page.searched_to is None


@pytest.fixture
async def sqlite_broker(tmp_path: Path) -> AsyncIterator[Broker]:
    created = build_broker(f"sqlite:///{tmp_path}/search.db", history=50)
    await created.start()
    yield created
    await created.close()


async def walk(broker: Broker, keep: Any, pattern: Any, want: int) -> list[list[str]]:
    """Every page of a search back to the start of retention, newest page first."""
    pages, cursor = [], None
    for _ in range(100):
        page = await older_page(
            broker, "log.app", cursor, keep, want=want, scan_limit=10**6, line_pattern=pattern
        )
        pages.append(lines(page.events))
        if page.cursor is None:
            return pages
        cursor = page.cursor
    raise AssertionError("the search never reached the start of retention")


async def test_the_store_side_search_answers_as_the_broker_paging_does(
    sqlite_broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(sqlite_broker, LineSearch)
    monkeypatch.setattr(scrollback, "STORE_SCAN", 500)  # a few steps of the store's scan
    for n in range(3000):
        level = "error" if n % 3 == 0 else "info"
        line = f"row {n} {'Timeout' if n % 7 == 0 else 'ok'}"
        await sqlite_broker.publish("log.app", "log", {"line": line, "file": "a", "level": level})
        if n % 5 == 0:
            await sqlite_broker.publish(
                "log.other", "log", {"line": "Timeout elsewhere", "file": "b"}
            )
    for text, ignore_case in (("timeout", True), ("Timeout", False), ("T[i]meout", False)):
        pattern = compile_user_regex(text, ignore_case=ignore_case)  # RE2 in SQLite, instr, RE2
        keep = EventFilter(KindRegistry(), pattern=pattern, level="error").accepts
        pushed = await walk(sqlite_broker, keep, pattern, want=40)
        paged = await walk(sqlite_broker, keep, None, want=40)
        assert pushed == paged and sum(map(len, pushed)) == len(range(0, 3000, 21)), text


async def test_the_store_side_search_goes_on_where_its_time_ran_out(
    sqlite_broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scrollback, "STORE_SCAN", 100)
    published = [
        await sqlite_broker.publish("log.app", "log", line_data(f"row {n}", 1.7e9, n))
        for n in range(450)
    ]
    ticks = iter(range(1000))
    pattern = compile_user_regex("row 1$")
    page = await older_page(
        sqlite_broker, "log.app", None, every, want=10, scan_limit=10,
        time_limit_s=1.5, clock=lambda: float(next(ticks)), line_pattern=pattern,
    )  # fmt: skip
    assert page.events == [] and page.cursor == published[250].id
    assert page.searched_to == 1.7e9 + 250  # the time the line states, as its row shows
    rest = await older_page(
        sqlite_broker, "log.app", page.cursor, every, want=10, scan_limit=10, line_pattern=pattern
    )
    assert (lines(rest.events), rest.cursor) == (["row 1"], None)
    gap = await older_page(
        sqlite_broker, "log.app", "zz99-3", every, want=10, scan_limit=10, line_pattern=pattern
    )
    assert gap.gap
