"""``pulseboard tail`` on two files, as a user runs it: the printed URL serves both, live."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LogFile, expect_connection, screenshot
from tests.support.cli import RunningCommand

pytestmark = pytest.mark.browser


LOG_CAP = 1000


def more_than_cap(page: Page, log: LogFile) -> None:
    """A short log's start of retention leaves the cap on; once it cuts, older lines load again."""
    log.append(*(f"INFO api flood {n:04d}" for n in range(1200)))
    rows = page.locator("#log-tail-list > li.line")
    expect(rows.last).to_contain_text("api flood 1199", timeout=15_000)
    expect(rows).to_have_count(LOG_CAP)
    button = page.get_by_role("button", name="Load older lines")
    expect(button).to_be_visible()
    button.click()
    # the three lines there were at start are back on top, whichever file was read first
    first_three = page.locator("#log-tail-list > li.line:nth-child(-n+4)")
    for text in ("api started", "api slow request", "worker job 7 failed"):
        expect(first_three.filter(has_text=text)).to_have_count(1)
    expect(page.locator(".older.start.old")).to_have_text(
        "Start of retention: nothing older is kept."
    )


def test_tail_serves_both_files_at_the_printed_url_until_ctrl_c(page: Page, tmp_path: Path) -> None:
    api, worker = LogFile(tmp_path / "api.log"), LogFile(tmp_path / "worker.log")
    api.append("INFO api started", "WARN api slow request")
    worker.append("ERROR worker job 7 failed")
    command = RunningCommand("tail", str(api.path), str(tmp_path / "work*.log"))
    try:
        (url,) = command.wait_for_lines(1)
        assert url.startswith("http://127.0.0.1:") and url.endswith("/channels/log.tail")
        page.goto(url)
        expect_connection(page, "Live", timeout_ms=10_000)
        rows = page.locator("#log-tail-list > li.line")
        expect(rows.filter(has_text="api slow request").locator(".file")).to_have_text("api.log")
        expect(rows.filter(has_text="worker job 7 failed").locator(".lvl")).to_have_text("error")
        api.append("INFO api live line")
        worker.append("INFO worker live line")
        expect(rows.filter(has_text="api live line")).to_have_count(1)
        expect(rows.filter(has_text="worker live line")).to_have_count(1)
        expect(rows).to_have_count(5)
        expect(page.locator(".older.start")).to_contain_text("Start of retention")
        screenshot(page, "tail-two-files")
        more_than_cap(page, api)
    finally:
        status = command.stop()
    assert status == 0, command.stderr
    assert not any("Traceback" in line for line in command.stderr), command.stderr
