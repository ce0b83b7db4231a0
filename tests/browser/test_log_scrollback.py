"""Scrollback in Chromium: from the newest lines up to the first retained one, live tail kept.

The file holds 20,000 lines before the server starts; the logtail backfills all
of them and ``broker.history`` retains them all, so the first line of the file
is the start of retention.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from app.render import SCROLLBACK_CAP
from tests.browser.conftest import (
    SCROLL_TO_TOP,
    LogFile,
    backfilled_server,
    expect_connection,
    filled_log,
    screenshot,
    scroll_up_until,
    served,
)
from tests.support.server import ServerProcess

pytestmark = pytest.mark.browser

LINES = 20_000
PAGE_ROWS = 200  # the viewer's first render (older pages bring more)
LOG_CAP = 1000
SCROLL_TO_END = "el => { el.scrollTop = 0; }"
PAGE_WAIT_S = 15.0


def numbered(n: int) -> str:
    level = ("INFO", "WARN", "ERROR", "DEBUG")[n % 4]
    return f"2026-12-01T13:{n // 60 % 60:02d}:{n % 60:02d}Z {level} scroll line {n:05d}"


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> LogFile:
    return filled_log(tmp_path_factory.mktemp("logs"), "app.log", map(numbered, range(LINES)))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, big_log: LogFile) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("server")
    yield from served(
        backfilled_server(workdir, big_log, "log.app", LINES, {"history": LINES + 100})
    )


def scroll_back(page: Page, pages: int | None = None) -> None:
    """Scroll to the top again and again: each time one older page comes in (or the start)."""
    rows = page.locator("#log-app-list > li.line")
    start = page.locator(".older.start")
    for _ in range(pages if pages is not None else LINES // PAGE_ROWS + 2):
        if start.count():
            return
        more = partial(_grown, rows, start, rows.count())
        scroll_up_until(page, more, "an older page", PAGE_WAIT_S)


def _grown(rows: Locator, start: Locator, before: int) -> bool:
    """An older page came in (or the start of retention)."""
    return rows.count() != before or bool(start.count())


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_scrolling_up_reaches_the_first_retained_line_while_the_tail_follows(
    page: Page, server: ServerProcess, big_log: LogFile
) -> None:
    page.goto(f"{server.url}/channels/log.app")
    expect_connection(page, "Live", timeout_ms=5000)
    rows = page.locator("#log-app-list > li.line")
    expect(rows).to_have_count(PAGE_ROWS)
    expect(page.locator(".to-live")).to_be_hidden()
    scroll_back(page)
    expect(page.locator(".older.start")).to_have_text("Start of retention: nothing older is kept.")
    # bounded: the SCROLLBACK_CAP rows nearest the top (where the reader is), then the live end
    expect(rows).to_have_count(SCROLLBACK_CAP + PAGE_ROWS)
    expect(rows.first).to_contain_text("scroll line 00000")
    page.locator(".viewer-body").evaluate(SCROLL_TO_TOP)
    expect(rows.first).to_be_in_viewport()
    texts = rows.all_inner_texts()
    shown = [*range(SCROLLBACK_CAP), *range(LINES - PAGE_ROWS, LINES)]
    assert [t.rsplit(" ", 1)[-1] for t in texts] == [f"{n:05d}" for n in shown]
    expect(page.locator(".to-live")).to_be_visible()

    big_log.append("INFO tail still followed while scrolled back")
    expect(rows.last).to_contain_text("tail still followed while scrolled back")
    expect(rows.first).to_contain_text("scroll line 00000")  # the cap spares the scrollback
    expect(rows.first).to_be_in_viewport()

    page.locator(".viewer-body").evaluate(SCROLL_TO_END)
    page.click(".to-live")
    expect_connection(page, "Live", timeout_ms=5000)
    expect(rows).to_have_count(PAGE_ROWS)
    expect(page.locator(".to-live")).to_be_hidden()


@pytest.mark.timeout(120)
def test_a_filtered_view_scrolls_back_through_matches_only(
    page: Page, server: ServerProcess
) -> None:
    page.goto(f"{server.url}/channels/log.app?q=line+01%5Cd%7B3%7D%24&level=error")
    expect_connection(page, "Live", timeout_ms=5000)
    rows = page.locator("#log-app-list > li.line")
    scroll_back(page)
    expect(page.locator(".older.start")).to_be_attached()
    wanted = [f"{n:05d}" for n in range(1000, 2000) if n % 4 == 2]
    expect(rows).to_have_count(len(wanted))
    assert [t.rsplit(" ", 1)[-1] for t in rows.all_inner_texts()] == wanted


@pytest.mark.parametrize(("width", "height"), [(1600, 1000), (390, 844)])
def test_screenshot_the_viewer_scrolled_back_and_at_the_live_end(
    browser: Browser, server: ServerProcess, width: int, height: int
) -> None:
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        page.goto(f"{server.url}/channels/log.app")
        expect_connection(page, "Live", timeout_ms=5000)
        screenshot(page, f"log-scrollback-live-end-{width}x{height}")
        scroll_back(page, pages=3)
        page.locator(".viewer-body").evaluate(SCROLL_TO_TOP)
        # the top row may already have fetched the next page (scroll anchoring then moves
        # it up): the row exists, and the screenshot is taken from the top again
        expect(page.locator(".older")).to_be_attached()
        page.locator(".viewer-body").evaluate(SCROLL_TO_TOP)
        screenshot(page, f"log-scrollback-older-{width}x{height}")
    finally:
        context.close()
