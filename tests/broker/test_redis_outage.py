"""redis:// when Redis goes away: 503s meanwhile, open subscriptions survive, nothing lost.

A Redis restarted with its data (AOF here) is the same epoch: the reader
resumes from its last id. A Redis that comes back empty is a new epoch: the
open subscriptions end and a client resuming with an old id gets a gap.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio

from app.broker.base import Broker, BrokerUnavailable, Start
from app.events import parse_event_id
from tests.broker.conftest import (
    BrokerFactory,
    RedisServer,
    ended,
    receive,
    unique_prefix,
)
from tests.support.waiting import until

pytestmark = pytest.mark.redis

OUTAGE_S = 5.0


def note(number: int) -> dict[str, Any]:
    return {"message": f"message {number}", "level": "info"}


async def restart(server: RedisServer, after_s: float) -> None:
    await asyncio.to_thread(server.stop)
    await asyncio.sleep(after_s)  # how long Redis is down is the scenario: nothing to await
    await asyncio.to_thread(server.start)


@pytest.mark.slow
async def test_a_redis_restart_with_its_data_loses_nothing(
    private_redis: Callable[..., RedisServer], make_redis_broker: BrokerFactory
) -> None:
    server = private_redis(persist=True)
    broker = await make_redis_broker(server.url, unique_prefix())
    async with broker.subscribe(["ops.deploys"], Start()) as sub:
        before = await broker.publish("ops.deploys", "notify", note(0))
        await receive(sub, 1)
        await asyncio.to_thread(server.stop)
        with pytest.raises(BrokerUnavailable):
            await broker.publish("ops.deploys", "notify", note(1))
        await until(lambda: not broker.ready, "the broker noticed Redis is down")
        await asyncio.sleep(OUTAGE_S)  # the outage's length is the scenario: nothing to await
        await asyncio.to_thread(server.start)
        await until(lambda: broker.ready, "the broker reconnected")
        after = await broker.publish("ops.deploys", "notify", note(2))
        received = await receive(sub, 1)
        assert sub.closed_reason is None
    assert [e.id for e in received] == [after.id]
    assert after.seq == before.seq + 1
    assert parse_event_id(after.id) == (broker.epoch, after.seq)


async def test_during_an_outage_streams_start_from_what_the_process_has(
    private_redis: Callable[..., RedisServer], make_redis_broker: BrokerFactory
) -> None:
    server = private_redis()
    broker = await make_redis_broker(server.url, unique_prefix())
    published = [await broker.publish("ops.deploys", "notify", note(n)) for n in range(3)]
    await broker.history("ops.deploys", None, 1)
    await asyncio.to_thread(server.stop)
    async with broker.subscribe(["ops.deploys"], Start(after=published[0].id)) as sub:
        received = await receive(sub, 2)
    async with broker.subscribe(["ops.deploys"], Start(history=1)) as sub:
        (newest,) = await receive(sub, 1)
    epoch, seq = published[-1].id.split("-")
    with pytest.raises(BrokerUnavailable):
        async with broker.subscribe(["ops.deploys"], Start(after=f"{epoch}-{int(seq) + 5}")):
            pass
    assert [e.id for e in received] == [e.id for e in published[1:]]
    assert newest.id == published[-1].id


async def test_a_redis_that_comes_back_empty_is_a_new_epoch(
    private_redis: Callable[..., RedisServer], make_redis_broker: BrokerFactory
) -> None:
    server = private_redis()
    prefix = unique_prefix()
    broker = await make_redis_broker(server.url, prefix)
    other = await make_redis_broker(server.url, prefix)
    old_epoch = broker.epoch
    async with broker.subscribe(["ops.deploys"], Start()) as sub:
        seen = await broker.publish("ops.deploys", "notify", note(0))
        await receive(sub, 1)
        await restart(server, after_s=0.5)
        await ended(sub)
    await until(lambda: other.epoch == broker.epoch != old_epoch, "both on the new epoch")
    fresh = await other.publish("ops.deploys", "notify", note(1))
    async with broker.subscribe(["ops.deploys"], Start(after=seen.id)) as sub:
        assert sub.gap_channels == ["ops.deploys"]
        (replayed,) = await receive(sub, 1)
    assert replayed.id == fresh.id
    assert parse_event_id(fresh.id) == (broker.epoch, 1)


async def test_publishing_with_a_stale_epoch_is_refused_not_misnumbered(
    private_redis: Callable[..., RedisServer], make_redis_broker: BrokerFactory
) -> None:
    server = private_redis()
    broker: Broker = await make_redis_broker(server.url, unique_prefix())
    await broker.publish("ops.deploys", "notify", note(0))
    await restart(server, after_s=0)
    outcomes = []
    deadline = time.monotonic() + 30  # a safety net: the broker reconnects with backoff
    while time.monotonic() < deadline:
        try:
            event = await broker.publish("ops.deploys", "notify", note(len(outcomes)))
        except BrokerUnavailable:
            outcomes.append("refused")
            await asyncio.sleep(0.02)  # the pace of a client retrying (the loop has a deadline)
            continue
        outcomes.append("published")
        assert parse_event_id(event.id) == (broker.epoch, 1)
        break
    assert outcomes[-1] == "published"


async def test_a_redis_restored_from_an_older_snapshot_is_a_new_epoch(
    private_redis: Callable[..., RedisServer], make_redis_broker: BrokerFactory
) -> None:
    server = private_redis()
    broker = await make_redis_broker(server.url, unique_prefix())
    await broker.publish("ops.deploys", "notify", note(0))
    client = redis.asyncio.Redis.from_url(server.url)
    try:
        await client.save()
    finally:
        await client.aclose()
    old_epoch = broker.epoch
    async with broker.subscribe(["ops.deploys"], Start()) as sub:
        lost = [await broker.publish("ops.deploys", "notify", note(n)) for n in (1, 2)]
        await receive(sub, 2)
        await restart(server, after_s=0)
        await ended(sub)
    assert broker.epoch != old_epoch
    async with broker.subscribe(["ops.deploys"], Start(after=lost[-1].id)) as sub:
        assert sub.gap_channels == ["ops.deploys"]
        (kept,) = await receive(sub, 1)
    fresh = await broker.publish("ops.deploys", "notify", note(3))
    assert kept.data == note(0)
    assert fresh.id not in {event.id for event in lost}
