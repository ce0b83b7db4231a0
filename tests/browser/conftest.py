"""Headless Debian Chromium driven by Playwright, against a real server per test module.

Never ``playwright install``: the browser is /usr/bin/chromium. Without it a
test skips locally and fails in CI (``CI=true``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from tests.conftest import require_binary
from tests.support.server import ServerProcess
from tests.support.waiting import wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "screenshots"
SYMBOLS = ["ACME", "GLOBEX", "INITECH", "UMBRELLA"]
SCROLL_TO_TOP = "el => { el.scrollTop = -el.scrollHeight; }"  # a reversed column: top is negative


def dashboard_config(log_file: Path, heartbeat_s: float = 1.0) -> dict[str, Any]:
    """Every kind on one page: chat room, notifications, a tailed log file, a ticker."""
    return {
        "server": {"heartbeat": heartbeat_s, "retry_ms": 500, "max_lag": 20000},
        "broker": {"history": 10000},
        "limits": {"chat_rate": 1000, "chat_burst": 1000},
        "channels": [
            {"name": "chat.lobby", "kind": "chat", "title": "Lobby"},
            {"name": "ops.alerts", "kind": "notify", "title": "Alerts"},
        ],
        "sources": [
            {"type": "ticker", "channel": "ticker", "symbols": SYMBOLS, "interval": 0.2, "seed": 7},
            {"type": "logtail", "channel": "log.app", "path": str(log_file), "lines": 100},
        ],
    }


class LogFile:
    """A file the server tails; ``append`` writes whole lines and flushes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.write_text("")

    def append(self, *lines: str) -> None:
        with self.path.open("a") as file:
            file.write("".join(f"{line}\n" for line in lines))


def filled_log(directory: Path, name: str, lines: Iterable[str]) -> LogFile:
    """A log file that already holds ``lines`` when the server starts."""
    log = LogFile(directory / name)
    log.append(*lines)
    return log


def backfilled_server(
    workdir: Path, log: LogFile, channel: str, lines: int, broker: dict[str, Any]
) -> ServerProcess:
    """A started server whose logtail backfills ``lines`` of ``log`` into ``channel``.

    It returns once the newest of them is stored, so that a test's first page sees them all.
    """
    config = {
        "server": {"heartbeat": 1.0, "retry_ms": 500, "max_lag": 50_000},
        "broker": broker,
        "sources": [{"type": "logtail", "channel": channel, "path": str(log.path), "lines": lines}],
    }
    process = ServerProcess(workdir, config).start()
    wait_until(lambda: newest_seq(process, channel) >= lines, f"{lines} lines stored", 120)
    return process


def newest_seq(server: ServerProcess, channel: str) -> int:
    """The sequence number of ``channel``'s newest event (0 before the first)."""
    channels = httpx.get(f"{server.url}/api/channels").json()["channels"]
    last = next((c["last_id"] for c in channels if c["name"] == channel), None)
    return int(last.rsplit("-", 1)[1]) if last else 0


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Per module: the sync API runs an event loop, which async tests after it must not meet."""
    require_binary(CHROMIUM, "the browser tests drive Debian's Chromium")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def log_file(tmp_path_factory: pytest.TempPathFactory) -> LogFile:
    return LogFile(tmp_path_factory.mktemp("logs") / "app.log")


def served(process: ServerProcess) -> Iterator[ServerProcess]:
    """A module's server fixture, ``yield from served(...)``: the started ``process``, then
    stopped, and a traceback in its log fails the module."""
    yield process
    process.stop()
    assert "Traceback" not in process.log(), process.log()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, log_file: LogFile) -> Iterator[ServerProcess]:
    config = dashboard_config(log_file.path)
    yield from served(ServerProcess(tmp_path_factory.mktemp("server"), config).start())


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page; a JavaScript dialog (an XSS that ran) fails the test."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    tab = context.new_page()
    dialogs: list[str] = []
    tab.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    yield tab
    context.close()
    assert not dialogs, f"script ran in the page: {dialogs}"


@pytest.fixture
def console(page: Page) -> list[str]:
    """Everything the page writes to its console, and uncaught errors."""
    messages: list[str] = []
    page.on("console", lambda message: messages.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: messages.append(f"pageerror: {error}"))
    return messages


def screenshot(page: Page, name: str) -> Path:
    """Save a screenshot under tests/screenshots/ (gitignored)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def scroll_up_until(page: Page, done: Callable[[], bool], what: str, within_s: float) -> None:
    """Scroll the log viewer to its top until ``done()``: a "load older" row asks when revealed.

    The scroll is repeated: until the stream's snapshot has replaced the page's first
    list, the row is inert (partials/_log.html), and each page brings a new row.
    """
    body = page.locator(".viewer-body")
    deadline = time.monotonic() + within_s
    while not done():
        assert time.monotonic() < deadline, f"not {what} within {within_s} s"
        body.evaluate(SCROLL_TO_TOP)
        page.wait_for_timeout(50)  # polling: nothing announces that the row has asked


def expect_connection(page: Page, state: str, timeout_ms: float = 5000) -> None:
    """Wait until the header's indicator shows ``state`` (the other labels are hidden)."""
    indicator = page.locator(".conn-slot")
    expect(indicator).to_contain_text(state, use_inner_text=True, timeout=timeout_ms)
