"""Zero console messages: a log viewer opened and left open while 200 lines/s arrive (15.8).

A writer thread appends plain, JSON and logfmt lines at ``RATE_PER_S`` for
``RUN_S`` seconds (two minutes; ``PULSEBOARD_CONSOLE_RUN_S`` lowers it for a
quick local run). A viewer opens *while* lines arrive, is scrolled up for a
while mid-run and back, and a fresh page loads near the end. Every console
message of any type, and every uncaught page error, fails the test. A viewer
filtered by ``q`` and ``field`` stays open from start to end and must show the
last matching line, and the scrolled-back page holds no more rows than the live end's
cap plus the scrollback's (``SCROLLBACK_CAP``): what keeps such a page quick enough that the
server never cuts its stream (a cut is a console error: the SSE extension logs it). The lines
the logtail reads together reach a page as one message, one swap (app/frames.py): with a swap
per line, Chromium under `stress-ng --cpu 1` fell behind 200 swaps/s and the stream was cut.
Every wait is bounded: a stalled page fails the test in minutes.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from app.render import SCROLLBACK_CAP
from tests.browser.conftest import LogFile, expect_connection
from tests.support.server import ServerProcess

pytestmark = pytest.mark.browser

RATE_PER_S = 200
RUN_S = float(os.environ.get("PULSEBOARD_CONSOLE_RUN_S", "120"))
TICK_S = 0.1
BEFORE_OPEN = 1500  # more than the DOM cap: the first render holds 200 of them
LOG_CAP = 1000
SCROLL_TO_TOP = "el => { el.scrollTop = -el.scrollHeight; }"  # a reversed column: top is negative
SCROLL_TO_END = "el => { el.scrollTop = 0; }"
OLD_AND_LIVE = (".old", ":not(.old)")
WAIT_MS = 90_000  # generous for a loaded box; a page that stalls for good fails, not hangs


def line(n: int) -> str:
    """Plain, JSON and logfmt lines in turn; every fifth is alice's."""
    user = "alice" if n % 5 == 0 else "bob"
    if n % 3 == 0:
        return f"2026-12-01T13:58:04Z INFO console plain line {n:06d}"
    if n % 3 == 1:
        return f'{{"level":"warn","msg":"console json line {n:06d}","user":"{user}","n":{n}}}'
    return f'level=error msg="console logfmt line {n:06d}" user={user} n={n}'


class Writer(threading.Thread):
    """Appends ``RATE_PER_S`` lines a second for ``RUN_S`` seconds; ``written`` counts them."""

    def __init__(self, log: LogFile, first: int) -> None:
        super().__init__(daemon=True)
        self.log, self.written, self.first = log, first, first
        self.stop = threading.Event()

    def run(self) -> None:
        batch = round(RATE_PER_S * TICK_S)
        deadline = time.monotonic() + RUN_S
        next_tick = time.monotonic()
        while time.monotonic() < deadline and not self.stop.is_set():
            self.log.append(*(line(n) for n in range(self.written, self.written + batch)))
            self.written += batch
            next_tick += TICK_S
            self.stop.wait(max(0.0, next_tick - time.monotonic()))


@pytest.fixture(scope="module")
def app_log(tmp_path_factory: pytest.TempPathFactory) -> LogFile:
    return LogFile(tmp_path_factory.mktemp("logs") / "app.log")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, app_log: LogFile) -> Iterator[ServerProcess]:
    config = {
        "server": {"heartbeat": 1.0, "retry_ms": 500, "max_lag": 50_000},
        "broker": {"history": 50_000},
        "sources": [{"type": "logtail", "channel": "log.app", "path": str(app_log.path)}],
    }
    process = ServerProcess(tmp_path_factory.mktemp("server"), config)
    process.start()
    yield process
    process.stop()
    assert "Traceback" not in process.log(), process.log()


def watched(browser: Browser, console: list[str], name: str) -> Page:
    """A new page whose console messages and page errors land in ``console``."""
    page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    page.on("console", lambda message: console.append(f"{name} {message.type}: {message.text}"))
    page.on("pageerror", lambda error: console.append(f"{name} pageerror: {error}"))
    return page


def pump(page: Page, writer: Writer, until_written: int) -> None:
    """Let Playwright deliver events while the writer works, up to ``until_written`` lines."""
    deadline = time.monotonic() + RUN_S + 60
    while writer.is_alive() and writer.written < until_written:
        assert time.monotonic() < deadline, "the writer never got there"
        page.wait_for_timeout(200)


@pytest.mark.slow
@pytest.mark.timeout(RUN_S + 420)  # the safety net under the bounded waits
def test_viewers_opened_and_left_open_at_200_lines_per_s_log_nothing(
    browser: Browser, server: ServerProcess, app_log: LogFile
) -> None:
    app_log.append(*(line(n) for n in range(BEFORE_OPEN)))
    console: list[str] = []
    writer = Writer(app_log, BEFORE_OPEN)
    writer.start()
    try:
        total = BEFORE_OPEN + round(RATE_PER_S * RUN_S)
        plain = watched(browser, console, "plain")
        plain.goto(f"{server.url}/channels/log.app", timeout=WAIT_MS)
        expect_connection(plain, "Live", timeout_ms=WAIT_MS)
        filtered = watched(browser, console, "filtered")
        filtered.goto(f"{server.url}/channels/log.app?q=line&field=user%3Dalice", timeout=WAIT_MS)
        expect_connection(filtered, "Live", timeout_ms=WAIT_MS)

        pump(plain, writer, BEFORE_OPEN + (total - BEFORE_OPEN) // 3)
        body = plain.locator(".viewer-body")
        for _ in range(50):  # scrolled up for a while mid-run ("load older" asks), then back
            body.evaluate(SCROLL_TO_TOP, timeout=WAIT_MS)
            plain.wait_for_timeout(100)
        body.evaluate(SCROLL_TO_END, timeout=WAIT_MS)

        pump(plain, writer, BEFORE_OPEN + (total - BEFORE_OPEN) * 9 // 10)
        fresh = watched(browser, console, "fresh")
        fresh.goto(f"{server.url}/channels/log.app", timeout=WAIT_MS)
        expect_connection(fresh, "Live", timeout_ms=WAIT_MS)
        writer.join(RUN_S + 60)
        assert not writer.is_alive()

        newest = line(writer.written - 1).split("console ", 1)[1].split('"')[0]
        for page in (plain, fresh):
            rows = page.locator("#log-app-list > li.line")
            expect(rows.last).to_contain_text(newest, timeout=WAIT_MS)
        alices = [n for n in range(writer.written) if n % 5 == 0 and n % 3 != 0]
        last_alice = line(alices[-1]).split("console ", 1)[1].split('"')[0]
        rows = filtered.locator("#log-app-list > li.line")
        expect(rows.last).to_contain_text(last_alice, timeout=WAIT_MS)
        # the fresh page holds the live end's cap; plain, scrolled back, also its scrollback
        # (+1: the row below an in-flight "load older" is spared)
        assert fresh.locator("#log-app-list > li.line").count() <= LOG_CAP
        assert plain.locator("#log-app-list > li.line.old").count() > 0, "no older page came"
        old, live = (plain.locator(f"#log-app-list > li.line{c}").count() for c in OLD_AND_LIVE)
        assert old + live <= LOG_CAP + SCROLLBACK_CAP + 1, f"{old} older rows, {live} live rows"
        plain.wait_for_timeout(500)  # late console messages
        cuts = [entry for entry in server.log().splitlines() if "cut" in entry.lower()]
        assert console == [], f"{len(console)} console messages: {console[:10]}; cuts: {cuts[:5]}"
    finally:
        writer.stop.set()
        writer.join(10)
        for page in browser.contexts:
            page.close()
