"""A Redis outage under two real gateways with an open stream and an active log tail.

Redis (with AOF) is stopped for five seconds: the gateways stay up, the open
stream keeps its heartbeats, ``/readyz`` says not ready, publishes answer 503
with Retry-After, and the lines written meanwhile arrive once Redis is back —
none lost, none doubled (issue 5 item 5).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.broker.conftest import REDIS_SERVER, RedisServer, unique_prefix
from tests.conftest import require_binary
from tests.redis.conftest import GatewayFactory
from tests.support.server import ServerProcess
from tests.support.sse_client import SSEStream
from tests.support.waiting import answer

pytestmark = pytest.mark.redis

OUTAGE_S = 5.0


@pytest.fixture
def persistent_redis(tmp_path: Path) -> Iterator[RedisServer]:
    require_binary(REDIS_SERVER, "the outage test needs a real Redis")
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(directory, persist=True)
    server.start()
    yield server
    server.stop()


def lines_of(events: list[Any]) -> list[str]:
    return [json.loads(event.data)["data"]["line"] for event in events]


def append(path: Path, *lines: str) -> None:
    with path.open("a") as file:
        file.writelines(f"{line}\n" for line in lines)


async def ready(gateway: ServerProcess) -> bool:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"{gateway.url}/readyz")).status_code == 200


async def until_ready_is(gateway: ServerProcess, wanted: bool) -> None:
    what = f"/readyz {'ready' if wanted else 'not ready'}"
    await answer(lambda: ready(gateway), lambda now: now == wanted, what, every_s=0.05)


@pytest.mark.slow
async def test_an_outage_loses_no_line_and_doubles_none(
    tmp_path: Path, persistent_redis: RedisServer, start_gateway: GatewayFactory
) -> None:
    log_file = tmp_path / "app.log"
    log_file.write_text("")
    config = {
        "server": {"heartbeat": 0.3, "retry_ms": 500},
        "broker": {"url": persistent_redis.url, "key_prefix": unique_prefix()},
        "channels": [{"name": "log.app", "kind": "log"}, {"name": "ops.deploys", "kind": "notify"}],
        "sources": [{"type": "logtail", "channel": "log.app", "path": str(log_file), "lines": 0}],
    }
    a, b = start_gateway(config), start_gateway(config)
    async with SSEStream(f"{b.url}/events?channel=log.app&format=json") as stream:
        append(log_file, "line 1", "line 2")
        before = await stream.events(2)
        await asyncio.to_thread(persistent_redis.stop)
        async with httpx.AsyncClient() as client:
            refused = await client.post(
                f"{a.url}/api/channels/ops.deploys/events", json={"message": "during"}
            )
        await until_ready_is(b, False)
        append(log_file, "line 3", "line 4", "line 5")
        pings = len(stream.parser.comments)
        await stream.wait_for(lambda: len(stream.parser.comments) >= pings + 3, within=15)
        await asyncio.sleep(OUTAGE_S)  # the outage's length is the scenario: nothing to await
        await asyncio.to_thread(persistent_redis.start)
        during = await stream.events(3, within=20)
        append(log_file, "line 6")
        after = await stream.events(1)
        await until_ready_is(b, True)
    assert lines_of(before + during + after) == [f"line {n}" for n in range(1, 7)]
    assert refused.status_code == 503
    assert int(refused.headers["Retry-After"]) > 0
