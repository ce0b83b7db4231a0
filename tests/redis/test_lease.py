"""The sources lease (``app.serve.lease.SourceLease``) against a real Redis.

A Redis wiped under a running deployment (``FLUSHALL``, a restart without
persistence) must not move the sources to another process: the log tails
would start again there (issue 12 point 10).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio

from app.broker.redis import RedisKeys
from app.serve.lease import SourceLease
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


async def set_epoch(url: str, prefix: str, epoch: str) -> None:
    """What a broker's (re)load does: the deployment's epoch key."""
    client = redis.asyncio.Redis.from_url(url)
    try:
        await client.set(RedisKeys(prefix).epoch, epoch)
    finally:
        await client.aclose()


async def flushall(url: str) -> None:
    client = redis.asyncio.Redis.from_url(url)
    try:
        await client.flushall()
    finally:
        await client.aclose()


async def test_after_a_flushall_the_holder_keeps_the_lease(
    redis_url: str, prefix: str, lease: Leases
) -> None:
    holder, standby = lease(), lease()
    await set_epoch(redis_url, prefix, "e1")
    assert await holder.claim() is True
    assert await standby.claim() is False
    await flushall(redis_url)
    assert await standby.claim() is False  # free, but the epoch is gone: the holder first
    await set_epoch(redis_url, prefix, "e2")  # a gateway reloaded
    assert await standby.claim() is False  # a new epoch again since its last look
    assert await holder.claim() is True
    assert await standby.claim() is False


async def test_a_lease_free_in_the_same_epoch_is_taken_at_once(
    redis_url: str, prefix: str, lease: Leases
) -> None:
    holder, standby = lease(), lease()
    await set_epoch(redis_url, prefix, "e1")
    assert await holder.claim() is True
    assert await standby.claim() is False
    await holder.close()  # a clean stop gives it back
    assert await standby.claim() is True


async def test_a_standby_takes_a_lease_left_free_after_a_wipe(
    redis_url: str, prefix: str, lease: Leases
) -> None:
    holder, standby = lease(), lease()
    await set_epoch(redis_url, prefix, "e1")
    assert await holder.claim() is True
    assert await standby.claim() is False
    await flushall(redis_url)  # and the holder is gone
    await set_epoch(redis_url, prefix, "e2")
    assert await standby.claim() is False
    assert await standby.claim() is True
