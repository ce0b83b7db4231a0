"""The log viewer in Chromium: a quiet console while lines arrive, and lines as they were written.

The channel holds more lines than the DOM cap before the page opens, so the page
renders 200 rows while every live row carries the cap's delete: the case that
flooded the console with ``htmx:oobErrorNoTarget``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import LogFile, expect_connection, screenshot, served
from tests.support.server import ServerProcess

pytestmark = pytest.mark.browser

LOG_CAP = 1000
BEFORE_OPEN = 1500  # more than the cap: the page renders 200 of them
RATE_PER_S = 200
RUN_S = 12
TICK_S = 0.1

AUTH_LINES = [
    "Dec  1 13:58:04 web-1 sshd[48213]: error: kex_exchange_identification: "
    "Connection closed by remote host",
    "Dec  1 13:58:09 web-1 sshd[48220]: Accepted publickey for deploy from 192.0.2.4 "
    "port 52110 ssh2: ED25519 SHA256:Xq1cT1b3pKZgWq",
]
DPKG_LINES = [
    "2026-12-01 13:58:04 startup packages configure",
    "2026-12-01 13:58:04 status installed chromium:amd64 131.0.6778.85-1~deb12u1",
]
KUBELET_LINES = [
    'E1201 13:58:04.123456    1234 pod_workers.go:1301] "Error syncing pod, skipping" '
    'pod="shop/api-7d9c6b5f4-x2x9q"',
    "W1201 13:58:05.000001    1234 reflector.go:561] failed to list *v1.Node: Unauthorized",
]


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``app.log`` (empty) and ``system/``: sample lines of three formats, one channel."""
    root = tmp_path_factory.mktemp("var-log")
    directory = root / "system"
    directory.mkdir()
    (directory / "auth.log").write_text("".join(f"{line}\n" for line in AUTH_LINES))
    (directory / "dpkg.log").write_text("".join(f"{line}\n" for line in DPKG_LINES))
    (directory / "kubelet.log").write_text("".join(f"{line}\n" for line in KUBELET_LINES))
    return root


@pytest.fixture(scope="module")
def app_log(logs: Path) -> LogFile:
    return LogFile(logs / "app.log")


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, logs: Path, app_log: LogFile
) -> Iterator[ServerProcess]:
    config = {
        "server": {"heartbeat": 1.0, "retry_ms": 500, "max_lag": 20000},
        "broker": {"history": 10000},
        "sources": [
            {"type": "logtail", "channel": "log.app", "path": str(app_log.path)},
            {"type": "logtail", "channel": "log.system", "path": str(logs / "system" / "*.log")},
        ],
    }
    yield from served(ServerProcess(tmp_path_factory.mktemp("server"), config).start())


def open_app_log(page: Page, server: ServerProcess, app_log: LogFile, marker: str) -> None:
    """Open the viewer once the channel holds more lines than the cap, and see a live line."""
    app_log.append(*(f"INFO {marker} filler {n}" for n in range(BEFORE_OPEN)))
    page.goto(f"{server.url}/channels/log.app")
    expect_connection(page, "Live", timeout_ms=5000)
    app_log.append(f"INFO {marker} first live line")
    last_row = page.locator("#log-app-list > li.line").last
    expect(last_row).to_contain_text(f"{marker} first live line")


def test_a_fresh_page_logs_nothing_in_the_console(
    page: Page, server: ServerProcess, app_log: LogFile, console: list[str]
) -> None:
    open_app_log(page, server, app_log, "fresh")
    app_log.append(*(f"INFO fresh more {n}" for n in range(20)))
    expect(page.locator("#log-app-list > li.line").last).to_contain_text("fresh more 19")
    assert console == []


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_page_left_open_while_lines_arrive_logs_nothing(
    page: Page, server: ServerProcess, app_log: LogFile, console: list[str]
) -> None:
    open_app_log(page, server, app_log, "open")
    batch = round(RATE_PER_S * TICK_S)
    total = RATE_PER_S * RUN_S
    for start in range(0, total, batch):  # 200 lines/s for RUN_S seconds
        app_log.append(*(f"INFO open line {n:05d}" for n in range(start, start + batch)))
        page.wait_for_timeout(TICK_S * 1000)  # the writer's pace, while the page is open
    rows = page.locator("#log-app-list > li.line")
    expect(rows.last).to_contain_text(f"open line {total - 1:05d}", timeout=30000)
    assert rows.count() == LOG_CAP
    assert console == [], f"{len(console)} console messages, first: {console[:3]}"


def test_rows_show_the_lines_own_time_level_and_file(page: Page, server: ServerProcess) -> None:
    page.goto(f"{server.url}/channels/log.system")
    expect_connection(page, "Live", timeout_ms=5000)
    rows = page.locator("#log-system-list > li.line")
    expect(rows).to_have_count(len(AUTH_LINES + DPKG_LINES + KUBELET_LINES))
    sshd = rows.filter(has_text="kex_exchange_identification")
    expect(sshd.locator(".file")).to_have_text("auth.log")
    expect(sshd.locator(".lvl")).to_have_text("error")
    expect(sshd.locator(".ln")).to_have_text("1")
    expect(sshd.locator("time")).not_to_have_class("read-time")
    expect(rows.filter(has_text="status installed").locator(".lvl")).to_have_text("info")
    kubelet = rows.filter(has_text="reflector.go")
    expect(kubelet.locator(".lvl")).to_have_text("warn")
    expect(kubelet.locator(".ln")).to_have_text("2")


def test_a_line_without_a_time_shows_when_it_was_read(
    page: Page, server: ServerProcess, app_log: LogFile
) -> None:
    page.goto(f"{server.url}/channels/log.app")
    expect_connection(page, "Live", timeout_ms=5000)
    app_log.append("no time in this line")
    row = page.locator("#log-app-list > li.line", has_text="no time in this line")
    read_at = re.compile(r"^read at ")
    expect(row.locator("time.read-time")).to_have_attribute("title", read_at, timeout=3000)
    expect(row.locator(".file")).to_have_count(0)


@pytest.mark.parametrize(("width", "height"), [(1600, 1000), (390, 844)])
def test_screenshot_the_log_viewer(
    browser: Browser, server: ServerProcess, width: int, height: int
) -> None:
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        page.goto(f"{server.url}/channels/log.system?q=(unclosed")
        expect(page.locator("#filter-error")).to_contain_text("missing ) in the filter")
        page.goto(f"{server.url}/channels/log.system")
        expect_connection(page, "Live", timeout_ms=5000)
        expect(page.locator("#log-system-list > li.line")).to_have_count(6)
        screenshot(page, f"log-lines-{width}x{height}")
        page.goto(f"{server.url}/channels/log.system?q=(unclosed")
        screenshot(page, f"log-bad-filter-{width}x{height}")
    finally:
        context.close()
