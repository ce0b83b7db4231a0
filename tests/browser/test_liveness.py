"""Honest liveness without script: the server is killed, the board goes stale and dims; restarted
on the same port, it is Live again and the gap banner fades by itself.

The default heartbeat (15 s) is kept on purpose: the status fragment's cadence must not follow it.
The measured figures go to tests/screenshots/figures.txt (see docs/performance.md); the bounds
asserted here are safety nets only.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import LogFile, dashboard_config, expect_connection, screenshot
from tests.browser.test_log import record
from tests.support.server import ServerProcess

pytestmark = pytest.mark.browser

SAFETY_MS = 15000


def server_config(log_file: LogFile) -> dict[str, object]:
    config = dashboard_config(log_file.path, heartbeat_s=15.0)
    config["server"] = {**config["server"], "retry_ms": 2000}  # the defaults of both
    return config


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_killed_server_turns_the_board_stale_and_a_restart_makes_it_live_again(
    browser: Browser, tmp_path: Path
) -> None:
    log_file = LogFile(tmp_path / "app.log")
    server = ServerProcess(tmp_path, server_config(log_file)).start()
    restarted: ServerProcess | None = None
    page = browser.new_context(viewport={"width": 1440, "height": 1000}).new_page()
    veil = page.locator(".conn-slot .conn-veil")
    try:
        page.goto(server.url)
        expect_connection(page, "Live", timeout_ms=SAFETY_MS)
        log_file.append("INFO before the kill")
        expect(page.locator("#log-app-list")).to_contain_text("before the kill")
        expect(veil).to_be_hidden()
        screenshot(page, "liveness-live")

        server.stop(signal.SIGKILL)
        killed = time.monotonic()
        expect_connection(page, "Reconnecting", timeout_ms=SAFETY_MS)
        left_live_s = time.monotonic() - killed
        expect(veil).to_be_visible(timeout=SAFETY_MS)
        dimmed_s = time.monotonic() - killed
        screenshot(page, "liveness-stale")
        page.emulate_media(color_scheme="dark")
        screenshot(page, "liveness-stale-dark")
        page.emulate_media(color_scheme="light")

        restarted = ServerProcess(tmp_path, server_config(log_file), port=server.port).start()
        back = time.monotonic()
        expect_connection(page, "Live", timeout_ms=SAFETY_MS)
        expect(veil).to_be_hidden(timeout=SAFETY_MS)
        live_again_s = time.monotonic() - back
        note = page.locator("#log-app-note .gap-note")
        expect(note).to_be_attached(timeout=SAFETY_MS)
        screenshot(page, "liveness-restarted")
        expect(note).to_be_hidden(timeout=SAFETY_MS)
        faded_s = time.monotonic() - back
        record(
            f"liveness (heartbeat 15 s, retry 2000 ms): left Live {left_live_s:.1f} s and dimmed"
            f" {dimmed_s:.1f} s after SIGKILL; Live again {live_again_s:.1f} s after the restart"
            f" answered; gap banner hidden {faded_s:.1f} s after it"
        )
    finally:
        page.context.close()
        for process in (server, restarted):
            if process is not None and process.process is not None:
                if process.process.poll() is None:
                    process.stop()
                assert "Traceback" not in process.log(), process.log()
