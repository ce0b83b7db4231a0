"""JSON and logfmt lines in Chromium: message, level, field chips, the raw line, field filters.

The fixture lines are real shapes: Go's log/slog (JSON and text handlers),
pino, structlog, logrus and a plain line between them.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import LogFile, expect_connection, screenshot, served
from tests.support.server import ServerProcess

pytestmark = pytest.mark.browser

LINES = [
    '{"time":"2026-12-01T13:58:04.101Z","level":"INFO","msg":"request served","method":"GET",'
    '"path":"/api/orders/77","status":200,"duration_ms":12.4,"user":"alice"}',
    'time=2026-12-01T13:58:04.220Z level=WARN msg="slow query" db=orders table=line_items '
    "duration=1.84s rows=12000 user=bob",
    '{"level":50,"time":1796133484330,"pid":4242,"hostname":"web-1","req":{"method":"POST",'
    '"url":"/api/charge"},"err":{"type":"CardDeclined","message":"card declined by issuer"},'
    '"user":"alice","msg":"charge failed"}',
    "2026-12-01T13:58:04.400Z INFO plain text lines stay as they are",
    '{"event": "user logged in", "user": "carol", "timestamp": "2026-12-01T13:58:04.5Z", '
    '"log.level": "info", "session": "9f0c2a51e3b84d6c8a7b1e0f5d2c4a9b7e6f1d3c2b5a4e8f"}',
    'time="2026-12-01T13:58:04.6Z" level=error msg="upstream timeout" upstream=payments '
    "attempt=3 trace_id=4bf92f3577b34da6a3ce929d0e0e4736 user=alice",
]


@pytest.fixture(scope="module")
def app_log(tmp_path_factory: pytest.TempPathFactory) -> LogFile:
    log = LogFile(tmp_path_factory.mktemp("logs") / "app.log")
    log.append(*LINES)
    return log


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, app_log: LogFile) -> Iterator[ServerProcess]:
    config = {
        "server": {"heartbeat": 1.0, "retry_ms": 500},
        "sources": [{"type": "logtail", "channel": "log.app", "path": str(app_log.path)}],
    }
    yield from served(ServerProcess(tmp_path_factory.mktemp("server"), config).start())


def open_viewer(page: Page, server: ServerProcess, query: str = "") -> None:
    page.goto(f"{server.url}/channels/log.app{query}")
    expect_connection(page, "Live", timeout_ms=10000)


def test_a_json_line_shows_message_level_chips_and_the_raw_line(
    page: Page, server: ServerProcess
) -> None:
    open_viewer(page, server)
    row = page.locator("#log-app-list > li.line", has_text="charge failed")
    expect(row.locator(".msg")).to_have_text("charge failed")
    expect(row.locator(".lvl")).to_have_text("error")
    expect(row.locator(".chip[data-k='err.message']")).to_have_text("card declined by issuer")
    raw = row.locator("details.raw code")
    expect(raw).to_be_hidden()
    row.locator("details.raw summary").click()
    expect(raw).to_be_visible()
    expect(raw).to_have_text(LINES[2])


def test_a_logfmt_line_is_structured_too(page: Page, server: ServerProcess) -> None:
    open_viewer(page, server)
    row = page.locator("#log-app-list > li.line", has_text="slow query")
    expect(row.locator(".msg")).to_have_text("slow query")
    expect(row.locator(".lvl")).to_have_text("warn")
    names = row.locator(".chip").evaluate_all("chips => chips.map(chip => chip.dataset.k)")
    assert names == ["db", "table", "duration", "rows", "user"]
    plain = page.locator("#log-app-list > li.line", has_text="plain text lines")
    expect(plain.locator(".chip")).to_have_count(0)


def test_the_field_box_keeps_only_lines_with_that_field_live_and_in_the_download(
    page: Page, server: ServerProcess, app_log: LogFile
) -> None:
    open_viewer(page, server)
    page.fill("input[name=field]", "user=alice")
    page.click("form.filter button[type=submit]")
    expect(page).to_have_url(f"{server.url}/channels/log.app?q=&level=&field=user%3Dalice")
    expect_connection(page, "Live", timeout_ms=10000)
    rows = page.locator("#log-app-list > li.line")
    expect(rows).to_have_count(3)
    app_log.append(
        '{"level":"info","msg":"live for alice","user":"alice"}',
        '{"level":"info","msg":"live for bob","user":"bob"}',
        'level=info msg="live logfmt for alice" user=alice',
    )
    expect(rows.last).to_contain_text("live logfmt for alice")
    expect(rows).to_have_count(5)
    expect(rows.filter(has_text="live for bob")).to_have_count(0)
    href = page.locator(".downloads a", has_text="text").get_attribute("href")
    assert href is not None and "field=user%3Dalice" in href
    text = httpx.get(f"{server.url}{href}", timeout=10).text.splitlines()
    assert [line for line in text] == [
        LINES[0],
        LINES[2],
        LINES[5],
        '{"level":"info","msg":"live for alice","user":"alice"}',
        'level=info msg="live logfmt for alice" user=alice',
    ]


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize(("width", "height"), [(1600, 1000), (390, 844)])
def test_screenshot_structured_lines(
    browser: Browser, server: ServerProcess, width: int, height: int, scheme: str
) -> None:
    context = browser.new_context(
        viewport={"width": width, "height": height},
        color_scheme=scheme,  # type: ignore[arg-type]
    )
    try:
        page = context.new_page()
        open_viewer(page, server)
        row = page.locator("#log-app-list > li.line", has_text="charge failed")
        row.locator("details.raw summary").click()
        expect(row.locator("details.raw code")).to_be_visible()
        screenshot(page, f"log-structured-{scheme}-{width}x{height}")
    finally:
        context.close()
