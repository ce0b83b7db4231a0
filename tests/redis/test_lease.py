"""The sources lease (``app.serve.lease.SourceLease``) against a real Redis.

A Redis wiped under a running deployment (``FLUSHALL``, a restart without
persistence) must not move the sources to another process: the log tails
would start again there (issue 12 point 10).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio

from app.broker.base import BrokerUnavailable
from app.broker.redis import RedisKeys
from app.events import Event, State
from app.serve.lease import SourceLease, patient
from tests.broker.conftest import RedisServer, unique_prefix
from tests.broker.conftest import private_redis as private_redis  # a Redis of the test's own

pytestmark = pytest.mark.redis

Leases = Callable[[], SourceLease]


@pytest.fixture
async def redis_url(private_redis: Callable[..., RedisServer]) -> str:
    return private_redis().url


@pytest.fixture
def prefix() -> str:
    return unique_prefix()


@pytest.fixture
async def lease(redis_url: str, prefix: str) -> AsyncIterator[Leases]:
    """``lease()``: a SourceLease of one deployment on the test's Redis, closed at the end."""
    made = []

    def make() -> SourceLease:
        made.append(SourceLease(redis_url, prefix))
        return made[-1]

    yield make
    for each in made:
        await each.close()


async def on_redis(url: str, *command: str) -> None:
    """One command on a connection of its own, as an operator or another process would."""
    client = redis.asyncio.Redis.from_url(url)
    try:
        await client.execute_command(*command)
    finally:
        await client.aclose()


async def set_epoch(url: str, prefix: str, epoch: str) -> None:
    """What a broker's (re)load does: the deployment's epoch key."""
    await on_redis(url, "SET", RedisKeys(prefix).epoch, epoch)


async def expire(url: str, lease: SourceLease) -> None:
    """What a Redis down for longer than the lease's TTL does: the key is gone."""
    await on_redis(url, "DEL", lease.key)


async def flushall(url: str) -> None:
    await on_redis(url, "FLUSHALL")


async def held_and_refused(
    lease: Leases, redis_url: str, prefix: str
) -> tuple[SourceLease, SourceLease]:
    """Two processes in epoch e1: the first holds the lease, the second was refused it."""
    holder, standby = lease(), lease()
    await set_epoch(redis_url, prefix, "e1")
    assert await holder.claim() is True
    assert await standby.claim() is False
    return holder, standby


async def test_after_a_flushall_the_holder_keeps_the_lease(
    redis_url: str, prefix: str, lease: Leases
) -> None:
    holder, standby = await held_and_refused(lease, redis_url, prefix)
    await flushall(redis_url)
    assert await standby.claim() is False  # free, but the epoch is gone: the holder first
    await set_epoch(redis_url, prefix, "e2")  # a gateway reloaded
    assert await standby.claim() is False  # a new epoch again since its last look
    assert await holder.claim() is True
    assert await standby.claim() is False


async def test_a_lease_free_in_the_same_epoch_is_taken_at_once(
    redis_url: str, prefix: str, lease: Leases
) -> None:
    holder, standby = await held_and_refused(lease, redis_url, prefix)
    await holder.close()  # a clean stop gives it back
    assert await standby.claim() is True


async def test_a_standby_takes_a_lease_left_free_after_a_wipe(
    redis_url: str, prefix: str, lease: Leases
) -> None:
    _holder, standby = await held_and_refused(lease, redis_url, prefix)
    await flushall(redis_url)  # and the holder is gone
    await set_epoch(redis_url, prefix, "e2")
    assert await standby.claim() is False
    assert await standby.claim() is True


async def test_a_publish_retried_after_an_outage_waits_while_another_process_holds_the_lease(
    redis_url: str, prefix: str, lease: Leases
) -> None:
    """The old holder must not publish a line the new holder's log tail publishes too."""
    holder, standby = lease(), lease()
    await set_epoch(redis_url, prefix, "e1")
    assert await holder.claim() is True
    outage = [BrokerUnavailable("Redis is unavailable")]
    published: list[dict[str, Any]] = []

    async def publish(
        channel: str, kind: str, data: dict[str, Any], state: State | None = None
    ) -> Event:
        if outage:
            raise outage.pop()
        published.append(data)
        return Event("e1-1", channel, kind, 0.0, data, 1, 0)

    await expire(redis_url, holder)
    assert await standby.claim() is True  # it starts the same sources from the checkpoints
    line = asyncio.create_task(patient(publish, holder.held_again)("log.app", "log", {"n": 3}))
    done, _ = await asyncio.wait([line], timeout=1.5)  # the retry comes after 0.1 s
    assert not done and published == []
    await standby.close()  # gone: the lease is free again in the same epoch
    await asyncio.wait_for(line, 10)
    assert published == [{"n": 3}]
