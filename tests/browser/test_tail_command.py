"""``pulseboard tail`` on two files, as a user runs it: the printed URL serves both, live."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LogFile, expect_connection, screenshot
from tests.support.cli import RunningCommand

pytestmark = pytest.mark.browser


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
        screenshot(page, "tail-two-files")
    finally:
        status = command.stop()
    assert status == 0, command.stderr
    assert not any("Traceback" in line for line in command.stderr), command.stderr
