"""Issue 14's crash loop: 20 SIGKILLs under load lose nothing and repeat nothing (sqlite://).

The loads: a tailed file with ERROR lines an alert rule POSTs to a webhook, an
NDJSON publisher and subscribers that resume with their Last-Event-ID.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.crash_loop import LogLines, Publisher, Subscribers, WebhookAlerts, crash_loop


@pytest.mark.slow
@pytest.mark.timeout(900)  # 20 restarts: ~3 min alone, ~9 min beside other suites on 2 cores
async def test_twenty_sigkills_under_load_lose_nothing_and_repeat_nothing(tmp_path: Path) -> None:
    publisher = Publisher("crash.notes")
    lines = LogLines(tmp_path / "log", error_every=10)
    loads = [lines, WebhookAlerts(lines), publisher, Subscribers(publisher, count=2)]
    await crash_loop(tmp_path, loads, kills=20)
