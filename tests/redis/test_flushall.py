"""Redis comes back empty (``FLUSHALL``) under load: the configured kinds hold, sources go on.

Regression test for issue 12 point 10: after a flush the configured channel
kinds were not declared again, so a forged post to a log channel was accepted,
a chat-form post was stored as a notify message, the log tail crash-looped on
the kind conflict that followed, and a gateway restarted afterwards refused to
start (``channel 'chat.lobby' is of kind 'notify', not 'chat'``).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.broker.conftest import RedisServer, unique_prefix
from tests.broker.conftest import private_redis as private_redis  # a Redis of the test's own
from tests.redis.conftest import GatewayFactory
from tests.support.server import ServerProcess
from tests.support.sse_client import SSEStream
from tests.support.waiting import until

pytestmark = pytest.mark.redis


def flushall(server: RedisServer) -> None:
    """FLUSHALL, as an operator would, on a connection closed at once."""
    with redis.Redis(port=server.port) as client:
        client.flushall()


class Load:
    """Publishes notifications to ``ops.deploys``, alternating gateways, from a few clients."""

    def __init__(self, gateways: list[ServerProcess], clients: int = 4) -> None:
        self.gateways = gateways
        self.clients = clients
        self.statuses: Counter[int] = Counter()
        self.epochs: list[str] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(n)) for n in range(self.clients)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def published(self, count: int, within_s: float = 30.0) -> None:
        """Wait until ``count`` publishes succeeded."""
        await until(lambda: self.statuses[201] >= count, f"{count} publishes", within_s)

    async def _run(self, count: int) -> None:
        async with httpx.AsyncClient(timeout=5.0) as client:
            while not self._stop.is_set():
                gateway = self.gateways[count % len(self.gateways)]
                count += 1
                response = await client.post(
                    f"{gateway.url}/api/channels/ops.deploys/events", json={"message": f"{count}"}
                )
                self.statuses[response.status_code] += 1
                if response.status_code == 201:
                    self.epochs.append(response.json()["id"].rpartition("-")[0])

    async def new_epoch(self, old: str, within_s: float = 20.0) -> str:
        """Wait until both gateways publish in an epoch other than ``old``."""
        async with asyncio.timeout(within_s):
            while True:
                seen = set(self.epochs[-2 * len(self.gateways) :])
                if len(self.epochs) > 2 * len(self.gateways) and seen and old not in seen:
                    return seen.pop()
                await asyncio.sleep(0.05)  # polling what the writer task saw (under a timeout)


def append(path: Path, *lines: str) -> None:
    with path.open("a") as file:
        file.writelines(f"{line}\n" for line in lines)


def lines_of(events: list[Any]) -> list[str]:
    return [json.loads(event.data)["data"]["line"] for event in events]


async def post(gateway: ServerProcess, channel: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(f"{gateway.url}/api/channels/{channel}/events", **kwargs)


async def history(gateway: ServerProcess, channel: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{gateway.url}/api/channels/{channel}/events")
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


async def test_flushall_under_load_keeps_configured_kinds_and_sources(
    tmp_path: Path, private_redis: Callable[..., RedisServer], start_gateway: GatewayFactory
) -> None:
    server = private_redis()
    log_file = tmp_path / "app.log"
    log_file.write_text("")
    config = {
        "server": {"heartbeat": 0.5, "retry_ms": 500},
        "broker": {"url": server.url, "key_prefix": unique_prefix()},
        "channels": [
            {"name": "chat.lobby", "kind": "chat"},
            {"name": "ops.deploys", "kind": "notify"},
        ],
        "sources": [{"type": "logtail", "channel": "log.app", "path": str(log_file), "lines": 0}],
    }
    a, b = start_gateway(config), start_gateway(config)
    load = Load([a, b])
    async with SSEStream(f"{b.url}/events?channel=log.app&format=json") as stream:
        append(log_file, "before 1", "before 2")
        assert lines_of(await stream.events(2, within=10)) == ["before 1", "before 2"]
        load.start()
        await load.published(100)
        old = await load.new_epoch("none")
        await asyncio.to_thread(flushall, server)
        await load.new_epoch(old)

        forged = [await post(g, "log.app", content=b"forged") for g in (a, b)]
        chat = await post(b, "chat.lobby", data={"user": "ann", "text": "hello"})
        async with SSEStream(f"{a.url}/events?channel=log.app&format=json") as fresh:
            append(log_file, "after 1", "after 2")
            after = lines_of(await fresh.events(2, within=15))
        await load.stop()
    assert [response.status_code for response in forged] == [409, 409], forged[0].text
    assert chat.status_code == 201, chat.text
    (stored,) = await history(a, "chat.lobby")
    assert (stored["kind"], stored["data"]) == ("chat", {"user": "ann", "text": "hello"})
    assert after == ["after 1", "after 2"]
    assert load.statuses[201] > 100
    assert set(load.statuses) <= {201, 503}, load.statuses
    for gateway in (a, b):
        assert "crashed" not in gateway.log(), gateway.log()

    b.stop()
    restarted = start_gateway(config)
    forged_again = await post(restarted, "log.app", content=b"forged")
    assert forged_again.status_code == 409, forged_again.text
    async with httpx.AsyncClient() as client:
        listed = (await client.get(f"{restarted.url}/api/channels")).json()
    kinds = {channel["name"]: channel["kind"] for channel in listed["channels"]}
    assert kinds["chat.lobby"] == "chat"
    assert kinds["log.app"] == "log"
