"""Search over history in Chromium (issue 15.2): a match 15,000 lines back, its context.

The file holds 20,000 lines before the server starts; the logtail backfills all
of them into a sqlite:// broker, whose memory ring holds only the newest 1,000:
the search reads the rest from the database, page by page, newest first.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import (
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
FAR = LINES - 15_000  # the line 15,000 lines back from the end
NEAR = LINES - 10  # a newer match, in lower case
CONTEXT = 25
SEARCH_WAIT_S = 60.0
CHANNEL = "log.pay"
LIST = "#log-pay-list"


def numbered(n: int) -> str:
    if n == FAR:
        return f"2026-12-01T09:00:00Z ERROR Payment DECLINED <card> order=4242 line {n:05d}"
    if n == NEAR:
        return f"2026-12-01T13:00:00Z WARN payment declined, will retry order=9001 line {n:05d}"
    return f"2026-12-01T10:{n // 60 % 60:02d}:{n % 60:02d}Z INFO payment accepted line {n:05d}"


@pytest.fixture(scope="module")
def pay_log(tmp_path_factory: pytest.TempPathFactory) -> LogFile:
    return filled_log(tmp_path_factory.mktemp("logs"), "pay.log", map(numbered, range(LINES)))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, pay_log: LogFile) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("server")
    broker = {
        "url": f"sqlite:///{workdir}/pb.db",
        "history": 1000,
        "retention": {"max_events": LINES + 1000},
    }
    yield from served(backfilled_server(workdir, pay_log, CHANNEL, LINES, broker))


def search(page: Page, server: ServerProcess, pattern: str) -> None:
    """Type the pattern, tick "Ignore case", apply: the page reloads with the search."""
    page.goto(f"{server.url}/channels/{CHANNEL}")
    expect_connection(page, "Live", timeout_ms=10_000)
    page.get_by_role("searchbox").fill(pattern)
    page.get_by_role("checkbox", name="Ignore case").check()
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"[?&]ignore_case=1"))
    expect_connection(page, "Live", timeout_ms=10_000)


def scroll_until(page: Page, row_text: str) -> None:
    """Scroll to the top until a row with ``row_text`` is there: the search pages back."""
    row = page.locator(f"{LIST} > li.line", has_text=row_text)
    start = page.locator(".older.start")

    def found() -> bool:
        assert not start.count() or row.count(), "start of retention, no match"
        return bool(row.count())

    scroll_up_until(page, found, f"a row {row_text!r}", SEARCH_WAIT_S)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_search_finds_a_line_15000_back_then_follows_live_and_opens_its_context(
    page: Page, server: ServerProcess, pay_log: LogFile
) -> None:
    search(page, server, "payment declined")
    rows = page.locator(f"{LIST} > li.line")
    expect(rows.last).to_contain_text("order=9001")  # the newer match, lower case
    expect(rows.last.locator("mark")).to_have_text("payment declined")
    scroll_until(page, "order=4242")
    far = page.locator(f"{LIST} > li.line", has_text="order=4242")
    expect(far.locator("mark")).to_have_text("Payment DECLINED")
    expect(far).to_contain_text("<card>")  # shown as text, escaped
    assert [t.split(" line ")[-1] for t in rows.all_inner_texts()] == [f"{FAR:05d}", f"{NEAR:05d}"]

    pay_log.append("2026-12-01T14:00:00Z INFO payment accepted line live0")
    pay_log.append("2026-12-01T14:00:01Z ERROR PAYMENT DECLINED order=live1")
    expect(rows.last).to_contain_text("order=live1")  # the live tail still follows matches
    expect(rows).to_have_count(3)

    far.locator("a.ctx").click()
    expect(page).to_have_url(re.compile(rf"/channels/{CHANNEL}/lines/[^?#]+\?.*#line-"))
    anchored = page.locator("li.line.anchor")
    expect(anchored).to_have_count(1)
    expect(anchored).to_contain_text("order=4242")
    expect(anchored).to_be_in_viewport()
    expect(anchored).to_have_attribute("aria-current", "true")
    assert page.url.endswith(f"#{anchored.get_attribute('id')}")
    shown = [t.split(" line ")[-1] for t in page.locator("li.line").all_inner_texts()]
    assert shown == [f"{n:05d}" for n in range(FAR - CONTEXT, FAR + CONTEXT + 1)]  # unfiltered
    page.get_by_role("link", name="Back to the search").click()
    expect(page).to_have_url(re.compile(r"q=payment\+declined&ignore_case=1"))


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize(("width", "height"), [(1600, 1000), (390, 844)])
def test_screenshot_search_results_and_context(
    browser: Browser, server: ServerProcess, width: int, height: int
) -> None:
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        search(page, server, "payment declined|order=4[0-9]+")
        scroll_until(page, "order=4242")
        page.locator(f"{LIST} > li.line", has_text="order=4242").scroll_into_view_if_needed()
        screenshot(page, f"log-search-results-{width}x{height}")
        page.locator(f"{LIST} > li.line", has_text="order=4242").locator("a.ctx").click()
        expect(page.locator("li.line.anchor")).to_be_in_viewport()
        screenshot(page, f"log-search-context-{width}x{height}")
    finally:
        context.close()
