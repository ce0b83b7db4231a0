"""Scrollback in Chromium: from the newest lines up to the first retained one, live tail kept.

The file holds 20,000 lines before the server starts; the logtail backfills all
of them and ``broker.history`` retains them all, so the first line of the file
is the start of retention.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from app.render import SCROLLBACK_CAP
from tests.browser.conftest import (
    SCROLL_TO_TOP,
    LogFile,
    backfilled_server,
    expect_connection,
    filled_log,
    newest_seq,
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
JUNCTION_LINES = 3000  # the junction's own server: six older pages of 500
ARRIVING_PER_TICK = 10  # lines a tick (0.1 s) while the junction test scrolls back
# where the junction sits: the last old row's index, its own, the first live row's
JUNCTION_PLACE = """list => {
  const kids = [...list.children];
  return [kids.findLastIndex(k => k.matches("li.line.old")),
          kids.findIndex(k => k.matches("li.junction")),
          kids.findIndex(k => k.matches("li.line:not(.old)"))];
}"""


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


@pytest.fixture(scope="module")
def junction_log(tmp_path_factory: pytest.TempPathFactory) -> LogFile:
    directory = tmp_path_factory.mktemp("junction-logs")
    return filled_log(directory, "app.log", map(numbered, range(JUNCTION_LINES)))


@pytest.fixture(scope="module")
def junction_server(
    tmp_path_factory: pytest.TempPathFactory, junction_log: LogFile
) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("junction-server")
    broker = {"history": JUNCTION_LINES + 50_000}
    yield from served(backfilled_server(workdir, junction_log, "log.app", JUNCTION_LINES, broker))


class Arriving(threading.Thread):
    """Appends numbered lines after the file's ``first`` ones, a few every 0.1 s, until stopped."""

    def __init__(self, log: LogFile, first: int) -> None:
        super().__init__(daemon=True)
        self.log, self.next = log, first
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.1):
            self.log.append(*map(numbered, range(self.next, self.next + ARRIVING_PER_TICK)))
            self.next += ARRIVING_PER_TICK

    def __enter__(self) -> Arriving:
        self.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.stop.set()
        self.join(10)


def scroll_back_pages(page: Page, pages: int) -> None:
    """Scroll to the top until ``pages`` more older pages came in, lines arriving or not."""
    old = page.locator("#log-app-list > li.line.old")
    for _ in range(pages):
        more = partial(_more_than, old, old.count())
        scroll_up_until(page, more, "an older page", PAGE_WAIT_S)


def _more_than(rows: Locator, count: int) -> bool:
    return rows.count() > count


def number(text: str) -> int:
    return int(text.rsplit(" ", 1)[-1])


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


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_one_row_marks_where_the_scrollback_meets_the_live_end(
    page: Page, junction_server: ServerProcess, junction_log: LogFile
) -> None:
    """The first older page ends with it; later pages go in above; a fresh page has none."""
    page.goto(f"{junction_server.url}/channels/log.app")
    expect_connection(page, "Live", timeout_ms=5000)
    junction = page.locator("#log-app-list > li.junction")
    expect(page.locator("#log-app-list > li.line")).to_have_count(PAGE_ROWS)
    expect(junction).to_have_count(0)
    rows = page.locator("#log-app-list")
    with Arriving(junction_log, JUNCTION_LINES) as arriving:
        scroll_back_pages(page, 1)
        expect(junction).to_have_count(1)
        last_old, at, first_live = rows.evaluate(JUNCTION_PLACE)
        assert (last_old + 1, first_live) == (at, at + 1)
        expect(junction).to_contain_text("Newer lines continue below")
        scroll_back_pages(page, 2)
    written = arriving.next
    # enough lines that the live end's cap has cut its oldest rows: the hole is real
    junction_log.append(*map(numbered, range(written, written + LOG_CAP)))
    live = page.locator("#log-app-list > li.line:not(.old)")
    expect(live.last).to_contain_text(f"scroll line {written + LOG_CAP - 1:05d}", timeout=30_000)
    expect(junction).to_have_count(1)
    last_old, at, first_live = rows.evaluate(JUNCTION_PLACE)
    assert (last_old + 1, first_live) == (at, at + 1)
    below = number(live.first.inner_text())
    above = number(page.locator("#log-app-list > li.line.old").last.inner_text())
    assert below > above + 1, (above, below)  # lines between them are not on the page
    junction.get_by_role("link", name="Live end").click()
    expect_connection(page, "Live", timeout_ms=5000)
    expect(page.locator("#log-app-list > li.line")).to_have_count(PAGE_ROWS)
    expect(junction).to_have_count(0)
    expect(page.locator("#log-app-list > li.line.old")).to_have_count(0)


@pytest.mark.parametrize(("width", "height", "scheme"), [(1600, 1000, "light"), (390, 844, "dark")])
def test_screenshot_the_junction(
    browser: Browser,
    junction_server: ServerProcess,
    junction_log: LogFile,
    width: int,
    height: int,
    scheme: Any,
) -> None:
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme)
    try:
        page = context.new_page()
        page.goto(f"{junction_server.url}/channels/log.app")
        expect_connection(page, "Live", timeout_ms=5000)
        scroll_back_pages(page, 1)
        first = newest_seq(junction_server, "log.app") + 100_000  # above what the others write
        junction_log.append(*map(numbered, range(first, first + LOG_CAP)))  # the cap cuts: a hole
        live = page.locator("#log-app-list > li.line:not(.old)")
        expect(live.last).to_contain_text(f"scroll line {first + LOG_CAP - 1:05d}", timeout=30_000)
        junction = page.locator("#log-app-list > li.junction")
        junction.evaluate("el => el.scrollIntoView({block: 'center'})")
        expect(junction).to_be_in_viewport()
        screenshot(page, f"log-scrollback-junction-{scheme}-{width}x{height}")
    finally:
        context.close()


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
