"""Restarts seen by a client that keeps its cursor (issue 14.1 and 14.4), on real servers.

memory:// forgets everything: a reconnect is told about the gap once, then
resumes from the cursor the gap frame carried. sqlite:// keeps the epoch and
the events: a cursor from before a restart or a SIGKILL is still a position.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import ServerProcess
from tests.support.sse_client import SSEStream
from tests.support.sse_parser import ParsedEvent


class Restartable:
    """One server config, restarted on the same port as an operator (or a crash) would."""

    def __init__(self, workdir: Path, config: dict[str, Any]) -> None:
        self.workdir = workdir
        self.config = config
        self.server = ServerProcess(workdir, config).start()

    def restart(self, sig: int = signal.SIGTERM) -> None:
        self.server.stop(sig)
        assert "Traceback" not in self.server.log(), self.server.log()
        self.server = ServerProcess(self.workdir, self.config, port=self.server.port).start()

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[Restartable]]:
    started: list[Restartable] = []
    yield started
    for each in started:
        each.server.stop()
        assert "Traceback" not in each.server.log(), each.server.log()


def config(url: str) -> dict[str, Any]:
    return {
        "server": {"heartbeat": 0.3},
        "broker": {"url": url},
        "limits": {"publish_rate": 1_000_000, "publish_burst": 1_000_000},
        "channels": [{"name": "ops.idle", "kind": "notify"}],
    }


async def publish(url: str, channel: str, message: str) -> str:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{url}/api/channels/{channel}/events", json={"message": message}
        )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def connect(url: str, channel: str, cursor: str | None, count: int = 0) -> list[ParsedEvent]:
    """Reconnect with ``cursor``; the start frames and ``count`` events, up to the first ping."""
    headers = {"Last-Event-ID": cursor} if cursor else {}
    async with SSEStream(f"{url}/events?channel={channel}", headers) as stream:
        await stream.wait_for(lambda: len(stream.parser.events) >= count)
        await stream.wait_for(lambda: "ping" in stream.parser.comments)
        return list(stream.parser.events)


@pytest.mark.slow
async def test_ten_reconnects_after_a_memory_restart_get_one_gap(
    servers: list[Restartable], tmp_path: Path
) -> None:
    servers.append(node := Restartable(tmp_path, config("memory://")))
    cursor: str | None = await publish(node.url, "ops.idle", "before the restart")
    node.restart()
    gaps = 0
    for _ in range(10):
        frames = await connect(node.url, "ops.idle", cursor)
        gaps += sum(1 for frame in frames if frame.event == "gap")
        cursor = next((frame.id for frame in reversed(frames) if frame.id), cursor)
    assert gaps == 1


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_a_sqlite_restart_loses_nothing_and_tells_of_no_gap(
    servers: list[Restartable], tmp_path: Path, sig: int
) -> None:
    servers.append(node := Restartable(tmp_path, config(f"sqlite:///{tmp_path}/state/pb.db")))
    seen = [await publish(node.url, "ops.deploys", f"seen {n}") for n in range(3)]
    frames = await connect(node.url, "ops.deploys", seen[0], count=2)
    cursor = frames[-1].id
    missed = [await publish(node.url, "ops.deploys", f"missed {n}") for n in range(2)]
    node.restart(sig)
    missed.append(await publish(node.url, "ops.deploys", "after the restart"))
    frames = await connect(node.url, "ops.deploys", cursor, count=3)
    assert [frame.event for frame in frames] == ["ops.deploys"] * 3
    assert [frame.id for frame in frames] == missed
    assert [json.loads(f.data)["data"]["message"] for f in frames][-1] == "after the restart"
