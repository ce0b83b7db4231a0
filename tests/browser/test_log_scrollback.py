"""Scrollback in Chromium: from the newest lines up to the first retained one, live tail kept.

The file holds 20,000 lines before the server starts; the logtail backfills all
of them and ``broker.history`` retains them all, so the first line of the file
is the start of retention.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import LogFile, expect_connection, screenshot
from tests.support.server import ServerProcess
from tests.support.waiting import wait_until

pytestmark = pytest.mark.browser

LINES = 20_000
PAGE_ROWS = 200  # the viewer's first render (older pages bring more)
LOG_CAP = 1000
SCROLL_TO_TOP = "el => { el.scrollTop = -el.scrollHeight; }"  # a reversed column: top is negative
SCROLL_TO_END = "el => { el.scrollTop = 0; }"
PAGE_WAIT_S = 15.0


def numbered(n: int) -> str:
    level = ("INFO", "WARN", "ERROR", "DEBUG")[n % 4]
    return f"2026-12-01T13:{n // 60 % 60:02d}:{n % 60:02d}Z {level} scroll line {n:05d}"


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> LogFile:
    log = LogFile(tmp_path_factory.mktemp("logs") / "app.log")
    log.append(*(numbered(n) for n in range(LINES)))
    return log


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, big_log: LogFile) -> Iterator[ServerProcess]:
    config = {
        "server": {"heartbeat": 1.0, "retry_ms": 500, "max_lag": 50_000},
        "broker": {"history": LINES + 100},
        "sources": [
            {"type": "logtail", "channel": "log.app", "path": str(big_log.path), "lines": LINES}
        ],
    }
    process = ServerProcess(tmp_path_factory.mktemp("server"), config).start()
    wait_until(lambda: retained(process) >= LINES, f"{LINES} lines retained")
    yield process
    process.stop()
    assert "Traceback" not in process.log(), process.log()


def retained(server: ServerProcess) -> int:
    channels = httpx.get(f"{server.url}/api/channels").json()["channels"]
    return next((c["retained"] for c in channels if c["name"] == "log.app"), 0)


def scroll_back(page: Page, pages: int | None = None) -> None:
    """Scroll to the top again and again: each time one older page comes in (or the start).

    The scroll is repeated while waiting: until the stream's snapshot has replaced the
    page's first list, the "load older" row is inert (partials/_log.html).
    """
    rows = page.locator("#log-app-list > li.line")
    body = page.locator(".viewer-body")
    start = page.locator(".older.start")
    for _ in range(pages if pages is not None else LINES // PAGE_ROWS + 2):
        if start.count():
            return
        before = rows.count()
        deadline = time.monotonic() + PAGE_WAIT_S
        while rows.count() == before and not start.count():
            assert time.monotonic() < deadline, f"no older page within {PAGE_WAIT_S} s"
            body.evaluate(SCROLL_TO_TOP)
            page.wait_for_timeout(50)


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
    expect(rows).to_have_count(LINES)
    expect(rows.first).to_contain_text("scroll line 00000")
    page.locator(".viewer-body").evaluate(SCROLL_TO_TOP)
    expect(rows.first).to_be_in_viewport()
    texts = rows.all_inner_texts()
    assert [t.rsplit(" ", 1)[-1] for t in texts] == [f"{n:05d}" for n in range(LINES)]
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
