"""redis:// across processes: two brokers on one Redis behave as one deployment.

Each RedisBroker stands for one gateway process (its own connections, reader
and rings); they share a redis-server and a key prefix.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio

from app.broker.base import Broker, Start
from app.events import Event
from tests.broker.conftest import BrokerFactory, RedisServer, receive, unique_prefix

pytestmark = pytest.mark.redis


def note(number: int) -> dict[str, Any]:
    return {"message": f"message {number}", "level": "info"}


def quote(symbol: str, price: float) -> dict[str, Any]:
    return {"symbol": symbol, "price": price, "change": 0.0, "change_pct": 0.0, "volume": 1}


async def publish_notes(broker: Broker, count: int, first: int = 0) -> list[Event]:
    return [await broker.publish("ops.deploys", "notify", note(first + n)) for n in range(count)]


def ids(events: list[Event]) -> list[str]:
    return [event.id for event in events]


@pytest.fixture
async def pair(
    redis_server: RedisServer, make_redis_broker: BrokerFactory
) -> tuple[Broker, Broker]:
    prefix = unique_prefix()
    return (
        await make_redis_broker(redis_server.url, prefix),
        await make_redis_broker(redis_server.url, prefix),
    )


async def test_published_on_one_process_is_delivered_on_the_other(
    pair: tuple[Broker, Broker],
) -> None:
    a, b = pair
    assert a.epoch == b.epoch
    async with b.subscribe(["ops.*"], Start()) as sub:
        published = await publish_notes(a, 3)
        received = await receive(sub, 3)
    assert ids(received) == ids(published)
    assert [e.data for e in received] == [e.data for e in published]


async def test_a_client_resumes_on_another_process_with_exactly_the_missed_events(
    pair: tuple[Broker, Broker],
) -> None:
    a, b = pair
    async with b.subscribe(["ops.deploys"], Start()) as sub:
        await publish_notes(a, 3)
        seen = await receive(sub, 3)
    missed = await publish_notes(a, 2, first=3)
    async with a.subscribe(["ops.deploys"], Start(after=seen[-1].id)) as sub:
        assert sub.gap_channels == []
        received = await receive(sub, 2)
        live = await b.publish("ops.deploys", "notify", note(5))
        (following,) = await receive(sub, 1)
    assert ids(received) == ids(missed)
    assert following.id == live.id


async def test_an_id_just_published_elsewhere_is_known_at_once(
    pair: tuple[Broker, Broker],
) -> None:
    a, b = pair
    for round_number in range(20):
        (published,) = await publish_notes(a, 1, first=round_number)
        async with b.subscribe(["ops.deploys"], Start(after=published.id)) as sub:
            assert sub.gap_channels == []
            assert sub.take() == []


async def test_history_and_latest_values_match_across_processes(
    pair: tuple[Broker, Broker],
) -> None:
    a, b = pair
    published = await publish_notes(a, 10)
    for step in range(6):
        await a.publish("ticker", "ticker", quote("ACME" if step % 2 else "INIT", step))
    async with b.subscribe(["ops.deploys"], Start(history=3)) as sub:
        replayed = await receive(sub, 3)
    async with b.subscribe(["ticker"], Start(snapshot=True)) as sub:
        latest = sub.snapshots["ticker"]
    assert ids(replayed) == ids(published[-3:])
    assert [(e.data["symbol"], e.data["price"]) for e in latest] == [("INIT", 4), ("ACME", 5)]
    page_a = await a.history("ops.deploys", published[4].id, 3)
    page_b = await b.history("ops.deploys", published[4].id, 3)
    assert ids(page_a.events) == ids(page_b.events) == ids(published[5:8])


async def test_a_process_started_later_loads_what_redis_retains(
    redis_server: RedisServer, make_redis_broker: BrokerFactory
) -> None:
    prefix = unique_prefix()
    a = await make_redis_broker(redis_server.url, prefix)
    await a.declare("ops.quiet", "notify")
    published = await publish_notes(a, 5)
    late = await make_redis_broker(redis_server.url, prefix)
    assert {info.name: info.retained for info in late.channels()} == {
        "ops.deploys": 5,
        "ops.quiet": 0,
    }
    async with late.subscribe(["ops.*"], Start(after=published[1].id)) as sub:
        received = await receive(sub, 3)
    assert ids(received) == ids(published[2:])


async def test_key_prefixes_keep_deployments_apart(
    redis_server: RedisServer, make_redis_broker: BrokerFactory
) -> None:
    one_prefix, other_prefix = unique_prefix(), unique_prefix()
    one = await make_redis_broker(redis_server.url, one_prefix)
    other = await make_redis_broker(redis_server.url, other_prefix)
    await publish_notes(one, 2)
    assert one.epoch != other.epoch
    assert [info.name for info in other.channels()] == []
    assert await other.kind_of("ops.deploys") is None
    client = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        assert await client.xlen(f"{one_prefix}:stream:ops.deploys") == 2
        assert await client.exists(f"{other_prefix}:fanout") == 0
    finally:
        await client.aclose()
