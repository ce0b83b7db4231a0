"""Server stopped and restarted on the same port: every panel resumes, each log line shows once.

Two ways back: the browser's EventSource reconnects by itself with Last-Event-ID
(the server was simply gone), or htmx recreates the EventSource without it (the
port answered 503 meanwhile, which makes the browser give up on that source).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Request, expect

from tests.browser.conftest import LogFile, dashboard_config, expect_connection, screenshot
from tests.support.server import ServerProcess

pytestmark = pytest.mark.browser


class Unavailable(BaseHTTPRequestHandler):
    """Answers every request with 503, counting the stream requests it refused."""

    refused = threading.Event()

    def do_GET(self) -> None:
        if self.path.startswith("/events"):
            type(self).refused.set()
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def log_file(tmp_path: Path) -> LogFile:
    return LogFile(tmp_path / "app.log")


@pytest.fixture
def servers(tmp_path: Path, log_file: LogFile) -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        if server.process is not None and server.process.poll() is None:
            server.stop()
        assert "Traceback" not in server.log(), server.log()


def start(
    servers: list[ServerProcess], tmp_path: Path, log_file: LogFile, port: int | None = None
) -> ServerProcess:
    server = ServerProcess(tmp_path, dashboard_config(log_file.path), port=port).start()
    servers.append(server)
    return server


def open_dashboard(browser: Browser, url: str) -> tuple[Page, list[Request]]:
    page = browser.new_context(viewport={"width": 1440, "height": 1000}).new_page()
    streams: list[Request] = []
    page.on("request", lambda r: streams.append(r) if "/events?" in r.url else None)
    page.goto(url)
    expect_connection(page, "Live", timeout_ms=5000)
    return page, streams


def append_numbered(log_file: LogFile, first: int, last: int) -> None:
    log_file.append(*(f"INFO resume line {n:03d}" for n in range(first, last + 1)))


def line_numbers(page: Page) -> list[int]:
    texts = page.locator("#log-app-list > li.line").all_inner_texts()
    return [int(m.group(1)) for t in texts if (m := re.search(r"resume line (\d+)", t))]


def assert_every_panel_resumed(page: Page, server: ServerProcess, log_file: LogFile) -> None:
    append_numbered(log_file, 31, 40)
    expect(page.locator("#log-app-list > li.line").last).to_contain_text("line 040", timeout=15000)
    assert line_numbers(page) == list(range(1, 41))
    expect_connection(page, "Live")
    price = page.locator("#ticker-sym-kACME .px")
    before = price.inner_text()
    expect(price).not_to_have_text(before, timeout=10000)
    for channel, payload in (
        ("chat.lobby", {"user": "ann", "text": "back after the restart"}),
        ("ops.alerts", {"message": "restarted", "title": "Server back", "level": "success"}),
    ):
        url = f"{server.url}/api/channels/{channel}/events"
        assert httpx.post(url, json=payload, timeout=5).status_code == 201
    expect(page.locator("#chat-lobby-list")).to_contain_text("back after the restart")
    expect(page.locator("#ops-alerts-list")).to_contain_text("Server back")


def before_the_restart(page: Page, server: ServerProcess, log_file: LogFile) -> None:
    append_numbered(log_file, 1, 20)
    expect(page.locator("#log-app-list > li.line").last).to_contain_text("line 020")
    server.stop()
    expect_connection(page, "Reconnecting", timeout_ms=5000)
    append_numbered(log_file, 21, 30)


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_resume_with_last_event_id(
    browser: Browser, servers: list[ServerProcess], tmp_path: Path, log_file: LogFile
) -> None:
    server = start(servers, tmp_path, log_file)
    page, streams = open_dashboard(browser, server.url)
    before_the_restart(page, server, log_file)
    restarted = start(servers, tmp_path, log_file, port=server.port)
    assert_every_panel_resumed(page, restarted, log_file)
    cursors = [request.all_headers().get("last-event-id") for request in streams]
    assert cursors[0] is None and cursors[-1], f"the browser resumed with its cursor: {cursors}"
    expect(page.locator("#log-app-note")).to_contain_text("Events missed — history reloaded")
    screenshot(page, "resumed-last-event-id")
    page.context.close()


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_resume_when_htmx_recreates_the_connection(
    browser: Browser, servers: list[ServerProcess], tmp_path: Path, log_file: LogFile
) -> None:
    server = start(servers, tmp_path, log_file)
    page, streams = open_dashboard(browser, server.url)
    before_the_restart(page, server, log_file)
    Unavailable.refused.clear()
    stand_in = ThreadingHTTPServer(("127.0.0.1", server.port), Unavailable)
    thread = threading.Thread(target=stand_in.serve_forever, daemon=True)
    thread.start()
    try:
        assert Unavailable.refused.wait(timeout=15), "the browser never retried the stream"
    finally:
        stand_in.shutdown()
        stand_in.server_close()
    restarted = start(servers, tmp_path, log_file, port=server.port)
    assert_every_panel_resumed(page, restarted, log_file)
    cursors = [request.all_headers().get("last-event-id") for request in streams]
    assert cursors[-1] is None, f"htmx opened a new EventSource: {cursors}"
    screenshot(page, "resumed-new-connection")
    page.context.close()
