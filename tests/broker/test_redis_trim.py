"""redis:// trimming: bounded streams, exact gap decisions, and a reader that falls behind."""

from __future__ import annotations

import time
from typing import Any

import msgspec
import pytest
import redis.asyncio

from app.broker.base import Broker, Start
from app.broker.redis import PUBLISH_LUA, RedisKeys
from app.events import Event
from tests.broker.conftest import BrokerFactory, RedisServer, ended, receive, unique_prefix

pytestmark = pytest.mark.redis


def note(number: int) -> dict[str, Any]:
    return {"message": f"message {number}", "level": "info"}


async def publish_notes(broker: Broker, count: int) -> list[Event]:
    return [await broker.publish("ops.deploys", "notify", note(n)) for n in range(count)]


async def test_channel_and_fanout_streams_stay_bounded(
    redis_server: RedisServer, make_redis_broker: BrokerFactory
) -> None:
    prefix = unique_prefix()
    broker = await make_redis_broker(redis_server.url, prefix, history=10, fanout_max=100)
    await publish_notes(broker, 1000)
    client = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        channel_length = await client.xlen(f"{prefix}:stream:ops.deploys")
        fanout_length = await client.xlen(f"{prefix}:fanout")
    finally:
        await client.aclose()
    assert 10 <= channel_length <= 10 + 200
    assert 100 <= fanout_length <= 100 + 200


async def test_a_later_process_decides_every_gap_like_the_first(
    redis_server: RedisServer, make_redis_broker: BrokerFactory
) -> None:
    prefix = unique_prefix()
    first = await make_redis_broker(redis_server.url, prefix, history=5)
    published = await publish_notes(first, 12)
    later = await make_redis_broker(redis_server.url, prefix, history=5)
    for event in published:
        expected = await first.history("ops.deploys", event.id, 100)
        page = await later.history("ops.deploys", event.id, 100)
        assert (page.gap, [e.id for e in page.events]) == (
            expected.gap,
            [e.id for e in expected.events],
        )
    gaps = [(await later.history("ops.deploys", e.id, 1)).gap for e in published]
    assert gaps == [True] * 6 + [False] * 6


async def burst(url: str, prefix: str, epoch: str, count: int, fanout_max: int) -> None:
    """Publish ``count`` events in one MULTI, so no reader sees them before the fan-out trims."""
    client = redis.asyncio.Redis.from_url(url)
    script = client.register_script(PUBLISH_LUA)
    keys = RedisKeys(prefix).publish("ops.deploys")
    try:
        async with client.pipeline(transaction=True) as pipe:
            for number in range(count):
                data = msgspec.json.encode(note(number))
                args = [epoch, "ops.deploys", "notify", repr(time.time()), data, 1000, fanout_max]
                await script(keys=keys, args=args, client=pipe)
            await pipe.execute()
    finally:
        await client.aclose()


async def test_a_reader_that_falls_behind_the_fanout_reloads_and_clients_resume(
    redis_server: RedisServer, make_redis_broker: BrokerFactory
) -> None:
    prefix = unique_prefix()
    broker = await make_redis_broker(redis_server.url, prefix, history=1000, fanout_max=100)
    async with broker.subscribe(["ops.deploys"], Start()) as sub:
        seen = await broker.publish("ops.deploys", "notify", note(0))
        await receive(sub, 1)
        await burst(redis_server.url, prefix, broker.epoch, 300, fanout_max=100)
        await ended(sub)
    async with broker.subscribe(["ops.deploys"], Start(after=seen.id)) as sub:
        assert sub.gap_channels == []
        missed = await receive(sub, 300)
    assert [e.seq for e in missed] == list(range(seen.seq + 1, seen.seq + 301))
