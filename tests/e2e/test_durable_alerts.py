"""The alert engine across restarts (issue 14.3): real servers, a real webhook listener.

One deployment (sqlite:// file, or a prefix on a real redis-server) is
restarted the ways an operator and a crash restart it. The listener is down
at first, so the deliveries wait in the outbox; lines are published while
the alerting server is down (by a second server without alert rules), and
one right before a SIGKILL. At the end each error line has raised exactly
one notification, and the listener holds each alert at least once, every
copy under that alert's own ``Idempotency-Key``.
"""

from __future__ import annotations

import re
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.broker.conftest import RedisServer, unique_prefix
from tests.broker.conftest import redis_server as redis_server  # the session's shared Redis
from tests.support.alert_deliveries import (
    WebhookListener,
    alerted_lines,
    check_deliveries,
    idempotency_key,
)
from tests.support.server import ServerProcess
from tests.support.waiting import wait_until

RULE_NAME = "Payments errors"
SETTLE_S = 60.0  # generous: up to 8 developers' suites share 2 cores


@pytest.fixture
def listener() -> Iterator[WebhookListener]:
    hook = WebhookListener()
    yield hook
    hook.stop()


class Deployment:
    """The alerting server tailing ``app.log``, restartable on its port; and a second server."""

    def __init__(self, workdir: Path, broker: dict[str, Any], webhook: str) -> None:
        self.workdir = workdir
        self.log_file = workdir / "app.log"
        self.log_file.write_text("INFO boot\n")
        self.config: dict[str, Any] = {
            "server": {"heartbeat": 0.5},
            "broker": broker,
            "sources": [self._tail(self.log_file, "log.app")],
            "alerts": [
                {
                    "name": RULE_NAME,
                    "channel": "log.*",
                    "pattern": "ERROR",
                    "notify": "ops.alerts",
                    "cooldown": 0.01,
                    "webhook": webhook,
                }
            ],
        }
        self.server = ServerProcess(workdir, self.config).start()
        self.logs: list[str] = []
        self.markers = 0
        self.ready()

    @staticmethod
    def _tail(path: Path, channel: str) -> dict[str, Any]:
        # lines = 1: the first start publishes the file's last line (the other server's line);
        # later starts continue at the stored offset
        return {"type": "logtail", "path": str(path), "channel": channel, "lines": 1}

    def write(self, line: str) -> None:
        with self.log_file.open("a") as file:
            file.write(line + "\n")

    def line(self, line: str) -> str:
        """Append ``line`` to the tailed file; its event id once it is published."""
        self.write(line)
        return wait_for_line(self.server.url, "log.app", line)

    def ready(self) -> None:
        """Wait until the tail publishes what is appended now (after a start)."""
        self.markers += 1
        self.line(f"INFO ready {self.markers}")

    def restart(self, sig: int = signal.SIGTERM) -> None:
        self.stop(sig)
        self.server = ServerProcess(self.workdir, self.config, port=self.server.port).start()
        self.ready()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.server.process is not None and self.server.process.poll() is None:
            self.server.stop(sig)
            self.logs.append(self.server.log())
        assert "Traceback" not in self.server.log(), self.server.log()

    def other_server_line(self, line: str) -> str:
        """Another server of the deployment, without alert rules, publishes ``line`` of its file."""
        other_log = self.workdir / "other.log"
        other_log.write_text(line + "\n")
        config = {
            "server": {"heartbeat": 0.5},
            "broker": self.config["broker"],
            "sources": [self._tail(other_log, "log.other")],
        }
        other = ServerProcess(self.workdir, config).start()
        try:
            return wait_for_line(other.url, "log.other", line)
        finally:
            other.stop()
            assert "Traceback" not in other.log(), other.log()


def wait_for_line(url: str, channel: str, line: str) -> str:
    """The id of the event carrying ``line`` on ``channel``, once it is there."""
    found: list[str] = []

    def published() -> bool:
        response = httpx.get(f"{url}/api/channels/{channel}/events?limit=1000", timeout=30)
        if response.status_code == 404:
            return False
        found[:] = [e["id"] for e in response.json()["events"] if e["data"]["line"] == line]
        return bool(found)

    wait_until(published, f"{line!r} published on {channel}", SETTLE_S)
    assert len(found) == 1, found
    return found[0]


def alerts_by_line(url: str) -> dict[str, int]:
    """How many notifications each line id raised, from ops.alerts' history."""
    return dict(Counter(alerted_lines(url, "ops.alerts")))


def key(line_id: str) -> str:
    return idempotency_key(line_id, RULE_NAME)


def metric(url: str, name: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found, text
    return float(found.group(1))


def broker_config(kind: str, tmp_path: Path, redis_server: RedisServer) -> dict[str, Any]:
    if kind == "sqlite":
        return {"url": f"sqlite:///{tmp_path}/state/pb.db"}
    return {"url": redis_server.url, "key_prefix": unique_prefix()}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_restarts_and_a_crash_neither_repeat_nor_lose_an_alert_and_webhooks_wait_for_the_listener(
    kind: str, tmp_path: Path, redis_server: RedisServer, listener: WebhookListener
) -> None:
    node = Deployment(tmp_path, broker_config(kind, tmp_path, redis_server), listener.url)
    try:
        url = node.server.url
        first = [node.line("ERROR payments: charge failed 1")]
        wait_until(lambda: first[0] in alerts_by_line(url), "the first alert", SETTLE_S)
        first.append(node.line("ERROR payments: charge failed 2"))  # after: no cooldown merges
        node.line("INFO api: order 2 created")
        # the listener is down: both deliveries fail, stay stored, are retried
        wait_until(
            lambda: node.server.log().count("attempt 1 failed") >= 2, "two failed POSTs", SETTLE_S
        )
        assert metric(url, "pulseboard_webhook_outbox") == 2
        node.stop()

        missed = node.other_server_line("ERROR payments: charge failed while it was down")
        listener.start()
        node.restart()  # after a clean stop: the outbox resumes, the missed line alerts
        expected = {key(line_id) for line_id in [*first, missed]}
        wait_until(lambda: listener.keys() == expected, "three deliveries", SETTLE_S)

        crashed = node.line("ERROR payments: charge failed right before a crash")
        node.write("INFO api: order 3 created")
        node.restart(signal.SIGKILL)  # the alert may or may not have been sent: once either way
        expected.add(key(crashed))
        wait_until(lambda: listener.keys() == expected, "the crash's delivery", SETTLE_S)

        node.restart()
        last = node.line("ERROR payments: charge failed after the restarts")
        expected.add(key(last))
        wait_until(lambda: listener.keys() == expected, "the last delivery", SETTLE_S)
        assert alerts_by_line(url) == dict.fromkeys([*first, missed, crashed, last], 1)
        check_deliveries(alerted_lines(url, "ops.alerts"), listener.received, RULE_NAME)
        assert metric(url, "pulseboard_webhook_outbox") == 0
    finally:
        node.stop()
    logs = "".join(node.logs)
    assert "starting at the live end" in logs  # the first start only
    assert "2 webhook deliveries pending" in logs


@pytest.mark.slow
def test_the_process_that_takes_the_lease_over_resumes_the_cursor_and_the_outbox(
    tmp_path: Path, redis_server: RedisServer, listener: WebhookListener
) -> None:
    node = Deployment(tmp_path, broker_config("redis", tmp_path, redis_server), listener.url)
    standby = ServerProcess(tmp_path, node.config).start()  # same config: it waits for the lease
    try:
        first = [node.line("ERROR payments: charge failed 1")]
        wait_until(lambda: first[0] in alerts_by_line(standby.url), "the first alert", SETTLE_S)
        first.append(node.line("ERROR payments: charge failed 2"))
        node.write("INFO api: order 2 created")
        wait_until(
            lambda: node.server.log().count("attempt 1 failed") >= 2, "two failed POSTs", SETTLE_S
        )
        node.stop(signal.SIGKILL)
        node.server = standby
        node.ready()  # the standby holds the lease now: its tail publishes
        listener.start()
        expected = {key(line_id) for line_id in first}
        wait_until(lambda: listener.keys() == expected, "the resumed deliveries", SETTLE_S)
        last = node.line("ERROR payments: charge failed after the takeover")
        expected.add(key(last))
        wait_until(lambda: listener.keys() == expected, "the last delivery", SETTLE_S)
        assert alerts_by_line(standby.url) == dict.fromkeys([*first, last], 1)
        check_deliveries(alerted_lines(standby.url, "ops.alerts"), listener.received, RULE_NAME)
    finally:
        node.stop()
    assert "2 webhook deliveries pending" in "".join(node.logs)
