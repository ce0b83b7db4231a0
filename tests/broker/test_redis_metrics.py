"""redis:// counts what went wrong for ``/metrics``: failed commands and reconnections."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from app.broker.base import BrokerUnavailable
from app.broker.redis import RedisBroker
from tests.broker.conftest import BrokerFactory, RedisServer, unique_prefix
from tests.support.waiting import until

pytestmark = pytest.mark.redis


async def test_a_redis_restart_counts_errors_and_one_reconnect(
    private_redis: Callable[..., RedisServer], make_redis_broker: BrokerFactory
) -> None:
    server = private_redis()
    broker = await make_redis_broker(server.url, unique_prefix())
    assert isinstance(broker, RedisBroker)
    await broker.publish("ops.deploys", "notify", {"message": "before", "level": "info"})
    assert (broker.stats.errors, broker.stats.reconnects) == (0, 0)
    await asyncio.to_thread(server.stop)
    with pytest.raises(BrokerUnavailable):
        await broker.publish("ops.deploys", "notify", {"message": "during", "level": "info"})
    assert broker.stats.errors >= 1
    await until(lambda: not broker.ready, "the broker noticed Redis is down")
    await asyncio.to_thread(server.start)
    await until(lambda: broker.ready, "the broker reconnected")
    assert broker.stats.reconnects == 1
    errors = broker.stats.errors
    await broker.publish("ops.deploys", "notify", {"message": "after", "level": "info"})
    assert (broker.stats.errors, broker.stats.reconnects) == (errors, 1)
