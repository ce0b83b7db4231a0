"""The log panel and viewer in a real browser: latency, DOM cap, filter, pause, follow-the-tail."""

from __future__ import annotations

import statistics
import time

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import SCREENSHOTS, LogFile, expect_connection, screenshot
from tests.support.server import ServerProcess
from tests.support.waiting import wait_until

pytestmark = pytest.mark.browser

LATENCY_LINES = 200
FLOOD_LINES = 5000
LOG_CAP = 1000
WATCH_ADDED_LINES = """
() => {
  window.seenAt = {};
  const feed = document.querySelector("#log-app-list").parentElement;
  new MutationObserver((mutations) => {
    const added = [];
    for (const mutation of mutations) {
      for (const node of mutation.addedNodes) {
        const found = /probe-(\\d+)/.exec(node.textContent || "");
        if (found) added.push(found[1]);
      }
    }
    // the frame that paints the new rows: "visible", not just "in the DOM"
    requestAnimationFrame(() => {
      const now = Date.now();
      for (const id of added) if (!(id in window.seenAt)) window.seenAt[id] = now;
    });
  }).observe(feed, {childList: true, subtree: true});
}
"""

COUNT_LISTS = """
window.lists = 0;  // the parser adds the page's list once; a snapshot would add another
new MutationObserver((mutations) => {
  for (const mutation of mutations) {
    for (const node of mutation.addedNodes) {
      if (node.id === "log-app-list") window.lists += 1;
    }
  }
}).observe(document, {childList: true, subtree: true});
"""


def record(figure: str) -> None:
    """Append a measured figure to tests/screenshots/figures.txt (and print it)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    with (SCREENSHOTS / "figures.txt").open("a") as file:
        file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {figure}\n")
    print(figure)


def open_viewer(page: Page, server: ServerProcess, query: str = "") -> Page:
    page.goto(f"{server.url}/channels/log.app{query}")
    expect_connection(page, "Live", timeout_ms=5000)
    return page


def test_appended_line_is_visible(page: Page, server: ServerProcess, log_file: LogFile) -> None:
    page.goto(server.url)
    expect_connection(page, "Live", timeout_ms=5000)
    log_file.append("first line after the page opened")
    expect(page.locator("#log-app-list")).to_contain_text(
        "first line after the page opened", timeout=10000
    )


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_each_appended_line_reaches_the_page(
    page: Page, server: ServerProcess, log_file: LogFile
) -> None:
    """Every line shows up, one by one; the latency is recorded, bench/ judges it."""
    open_viewer(page, server)
    page.evaluate(WATCH_ADDED_LINES)
    latencies_ms: list[float] = []
    for index in range(LATENCY_LINES):
        written_ms = time.time() * 1000
        log_file.append(f"INFO latency probe-{index}")
        page.wait_for_function(f"() => '{index}' in window.seenAt", timeout=15000)
        latencies_ms.append(page.evaluate(f"() => window.seenAt['{index}']") - written_ms)
    p50 = statistics.median(latencies_ms)
    p99 = statistics.quantiles(latencies_ms, n=100)[98]
    report = f"line appended -> visible: p50 {p50:.0f} ms, p99 {p99:.0f} ms over {LATENCY_LINES}"
    record(report)


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("path", ["/", "/channels/log.app"])
def test_dom_holds_at_most_the_cap_after_5000_lines(
    page: Page, server: ServerProcess, log_file: LogFile, path: str
) -> None:
    page.goto(server.url + path)
    expect_connection(page, "Live", timeout_ms=5000)
    tag = "flood-dash" if path == "/" else "flood-viewer"
    started = time.monotonic()
    for start in range(0, FLOOD_LINES, 500):
        log_file.append(*(f"INFO {tag} line {n:05d}" for n in range(start, start + 500)))
    last = page.locator("#log-app-list > li.line").last
    expect(last).to_contain_text(f"{tag} line {FLOOD_LINES - 1:05d}", timeout=90_000)
    elapsed_s = time.monotonic() - started
    record(f"{FLOOD_LINES} lines on {path}: the last one visible after {elapsed_s:.2f} s")
    rows = page.locator("#log-app-list > li.line")
    assert rows.count() <= LOG_CAP
    texts = rows.all_inner_texts()
    wanted = [f"{tag} line {n:05d}" for n in range(FLOOD_LINES - len(texts), FLOOD_LINES)]
    assert [t for t in texts if tag in t] == [t for t in texts if any(w in t for w in wanted)]
    assert len(texts) == LOG_CAP


def test_filter_shows_only_matching_lines(
    page: Page, server: ServerProcess, log_file: LogFile
) -> None:
    open_viewer(page, server)
    page.fill("input[name=q]", r"needle-\d+")
    page.select_option("select[name=level]", "warn")
    page.click("form.filter button[type=submit]")
    expect(page).to_have_url(f"{server.url}/channels/log.app?q=needle-%5Cd%2B&level=warn&field=")
    expect_connection(page, "Live", timeout_ms=5000)
    log_file.append(
        "WARN needle-1 matches",
        "WARN haystack does not match",
        "INFO needle-2 is below the level",
        "ERROR needle-3 matches too",
    )
    rows = page.locator("#log-app-list > li.line")
    expect(rows.last).to_contain_text("needle-3 matches too")
    texts = rows.all_inner_texts()
    assert texts and all("needle-" in text for text in texts), texts
    assert not any("haystack" in text or "needle-2" in text for text in texts)
    expect(page.locator("#log-app-list mark").last).to_have_text("needle-3")
    screenshot(page, "log-viewer-filtered")


def test_the_stream_resumes_after_the_pages_rows_and_keeps_their_marks(
    page: Page, server: ServerProcess, log_file: LogFile
) -> None:
    """The page's stream starts at its newest row: no snapshot replaces the marked rows."""
    listing = httpx.get(f"{server.url}/api/channels", timeout=5).json()["channels"]
    last_id = next(c["last_id"] for c in listing if c["name"] == "log.app")
    log_file.append("WARN marker-77 was here before the page opened")
    # history pages forward from `after`: without it, a long channel answers its oldest lines
    history = f"{server.url}/api/channels/log.app/events?after={last_id or ''}&limit=1000"
    wait_until(lambda: "marker-77" in httpx.get(history, timeout=5).text, "the line in log.app")
    page.add_init_script(COUNT_LISTS)
    page.goto(f"{server.url}/channels/log.app?q=marker-%5Cd%2B")
    expect_connection(page, "Live", timeout_ms=5000)
    expect(page.locator("#log-app-list mark").last).to_have_text("marker-77")
    log_file.append("WARN marker-78 arrived live")
    expect(page.locator("#log-app-list mark").last).to_have_text("marker-78")
    assert page.evaluate("() => window.lists") == 1
    expect(page.locator("#log-app-list > li.line", has_text="marker-77")).to_have_count(1)


def test_pause_freezes_and_resume_follows_again(
    page: Page, server: ServerProcess, log_file: LogFile
) -> None:
    open_viewer(page, server)
    page.click("a.pause")
    expect(page).to_have_url(f"{server.url}/channels/log.app?paused=1")
    expect(page.locator("[sse-connect]")).to_have_count(0)
    expect_connection(page, "Paused")
    log_file.append("INFO written while paused")
    page.click("a.pause")
    expect_connection(page, "Live", timeout_ms=5000)
    expect(page.locator("#log-app-list")).to_contain_text("written while paused")


def test_viewer_follows_the_tail_until_scrolled_up(
    page: Page, server: ServerProcess, log_file: LogFile
) -> None:
    open_viewer(page, server)
    log_file.append(*(f"INFO follow line {n}" for n in range(300)))
    newest = page.locator("#log-app-list > li.line").last
    expect(newest).to_contain_text("follow line 299")
    expect(newest).to_be_in_viewport()
    page.locator(".viewer-body").hover()
    page.mouse.wheel(0, -3000)
    reading = page.locator("#log-app-list > li.line", has_text="follow line 200 ").first
    reading.scroll_into_view_if_needed()
    expect(reading).to_be_in_viewport()
    log_file.append(*(f"INFO follow more {n}" for n in range(50)))
    expect(newest).to_contain_text("follow more 49")
    expect(reading).to_be_in_viewport()
    expect(newest).not_to_be_in_viewport()
