"""Headless Debian Chromium driven by Playwright, against a real server per test module.

Never ``playwright install``: the browser is /usr/bin/chromium. Without it a
test skips locally and fails in CI (``CI=true``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from tests.conftest import require_binary
from tests.support.server import ServerProcess

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


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, log_file: LogFile) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("server"), dashboard_config(log_file.path))
    process.start()
    yield process
    process.stop()
    assert "Traceback" not in process.log(), process.log()


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


def screenshot(page: Page, name: str) -> Path:
    """Save a screenshot under tests/screenshots/ (gitignored)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def expect_connection(page: Page, state: str, timeout_ms: float = 5000) -> None:
    """Wait until the header's indicator shows ``state`` (the other labels are hidden)."""
    indicator = page.locator(".conn-slot")
    expect(indicator).to_contain_text(state, use_inner_text=True, timeout=timeout_ms)
