"""redis:// after Redis comes back empty: each process declares its channels' kinds again.

A ``FLUSHALL`` (or a restart without persistence) wipes ``P:kinds``: without a
new declaration the first post would fix a configured channel's kind (issue 12
point 10). The broker remembers what it declared and records it again on the
new epoch, before its new mirror answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import redis.asyncio

from app.broker.base import KindConflict
from tests.broker.conftest import BrokerFactory, RedisServer, unique_prefix
from tests.support.waiting import answer, until

pytestmark = pytest.mark.redis


async def test_declared_kinds_survive_a_flushall(
    private_redis: Callable[..., RedisServer], make_redis_broker: BrokerFactory
) -> None:
    server = private_redis()
    prefix = unique_prefix()
    broker = await make_redis_broker(server.url, prefix)
    await broker.declare("log.app", "log")
    await broker.declare("chat.lobby", "chat")
    old = broker.epoch
    client = redis.asyncio.Redis.from_url(server.url)
    try:
        await client.flushall()
        await until(lambda: broker.epoch not in ("", old), "a new epoch")
        stored = await answer(  # the reload records the kinds again
            lambda: client.hgetall(f"{prefix}:kinds"), bool, "the kinds stored again"
        )
    finally:
        await client.aclose()
    assert stored == {b"log.app": b"log", b"chat.lobby": b"chat"}
    assert await broker.kind_of("log.app") == "log"
    assert [info.name for info in broker.channels()] == ["chat.lobby", "log.app"]
    with pytest.raises(KindConflict):
        await broker.publish("chat.lobby", "notify", {"message": "x", "level": "info"})


async def test_declared_kinds_survive_an_empty_restart(
    private_redis: Callable[..., RedisServer], make_redis_broker: BrokerFactory
) -> None:
    server = private_redis()
    broker = await make_redis_broker(server.url, unique_prefix())
    await broker.declare("log.app", "log")
    old = broker.epoch
    await asyncio.to_thread(server.stop)
    await asyncio.to_thread(server.start)
    await until(lambda: broker.ready and broker.epoch not in ("", old), "reloaded, new epoch")
    assert await broker.kind_of("log.app") == "log"
    with pytest.raises(KindConflict):
        await broker.publish("log.app", "notify", {"message": "forged", "level": "info"})
