"""redis:// and idle channels: a sweep forgets a channel in Redis, not under a subscriber.

Two RedisBrokers on one prefix stand for two gateway processes.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio

from app.broker.base import Start
from tests.broker.conftest import BrokerFactory, RedisServer, receive, unique_prefix

pytestmark = pytest.mark.redis

IDLE = {"channel_idle_ttl": "1h"}


def note(number: int) -> dict[str, Any]:
    return {"message": f"message {number}", "level": "info"}


async def test_a_swept_channel_leaves_redis_and_goes_on_where_it_is_still_followed(
    redis_server: RedisServer, make_redis_broker: BrokerFactory
) -> None:
    prefix = unique_prefix()
    sweeper = await make_redis_broker(redis_server.url, prefix, limits=IDLE)
    follower = await make_redis_broker(redis_server.url, prefix, limits=IDLE)
    await sweeper.publish("a.gone", "notify", note(0))
    client = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        async with follower.subscribe(["a.gone"], Start(history=1)) as sub:
            await receive(sub, 1)
            await sweeper.history("a.gone", None, 1)
            assert await sweeper.sweep(0.0) == []
            assert await follower.sweep(0.0) == []
            assert await sweeper.sweep(3600.0) == ["a.gone"]
            assert await follower.sweep(3600.0) == []
            assert await client.exists(f"{prefix}:stream:a.gone") == 0
            assert await client.hget(f"{prefix}:kinds", "a.gone") is None
            assert await sweeper.kind_of("a.gone") is None
            late = await make_redis_broker(redis_server.url, prefix, limits=IDLE)
            assert [info.name for info in late.channels()] == []
            again = await sweeper.publish("a.gone", "notify", note(1))
            assert [event.id for event in await receive(sub, 1)] == [again.id]
            assert sub.closed_reason is None
    finally:
        await client.aclose()
    assert again.offset == 1
