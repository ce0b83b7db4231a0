"""Broker fixtures: a real ``redis-server`` on a free port in a temp dir, and broker factories.

The server is skipped with a reason when the binary is missing locally and a
failure in CI (``CI=true``), like every other test that needs a real binary.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from app.broker import create_broker
from app.broker.base import Broker
from app.broker.hub import Subscription
from app.events import Event, KindRegistry
from app.settings import settings_from_dict
from tests.conftest import require_binary

REDIS_SERVER = "/usr/bin/redis-server"
START_TIMEOUT_S = 10.0


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` process; ``persist`` keeps its data across stop/start (AOF)."""

    def __init__(self, directory: Path, *, persist: bool = False) -> None:
        self.directory = directory
        self.port = free_port()
        self.persist = persist
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        persistence = ("--appendonly", "yes", "--appendfsync", "always")
        if not self.persist:
            persistence = ("--appendonly", "no")
        return [
            REDIS_SERVER,
            *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)),
            *("--save", "", "--daemonize", "no", "--logfile", str(self.directory / "redis.log")),
            *persistence,
        ]

    def start(self) -> None:
        """Start the server and return once it answers PING."""
        self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while not self._answers(client):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = (self.directory / "redis.log").read_text(errors="replace")
                    raise RuntimeError(f"redis-server did not start:\n{log}")
                time.sleep(0.02)  # polling: another process, its PING is the only sign
        finally:
            client.close()

    def stop(self) -> None:
        """Stop the server (SIGTERM, as an operator would) and wait for it to exit."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=START_TIMEOUT_S)
        self.process = None

    @staticmethod
    def _answers(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server shared by the session; tests keep apart by key prefix."""
    require_binary(REDIS_SERVER, "the redis:// broker tests need a real Redis")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Factory for a redis-server of the test's own (to stop and restart it)."""
    require_binary(REDIS_SERVER, "the redis:// broker tests need a real Redis")
    servers: list[RedisServer] = []

    def start(*, persist: bool = False) -> RedisServer:
        server = RedisServer(tmp_path / f"redis{len(servers)}", persist=persist)
        server.directory.mkdir()
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


BrokerFactory = Callable[..., Awaitable[Broker]]


@pytest.fixture
async def make_redis_broker() -> AsyncIterator[BrokerFactory]:
    """Started RedisBrokers (closed at teardown); pass ``url`` and ``prefix`` to share one."""
    brokers: list[Broker] = []

    async def make(url: str, prefix: str, **broker: Any) -> Broker:
        created = build_broker(url, prefix=prefix, **broker)
        await created.start()
        brokers.append(created)
        return created

    yield make
    for created in brokers:
        await created.close()


def build_broker(
    url: str,
    *,
    prefix: str = "pb",
    history: int = 100,
    max_lag: int = 1000,
    limits: dict[str, Any] | None = None,
    **broker: Any,
) -> Broker:
    """A broker from settings, exactly as the app builds it (``limits``: the [limits] table)."""
    settings = settings_from_dict(
        {
            "broker": {"url": url, "history": history, "key_prefix": prefix, **broker},
            "server": {"max_lag": max_lag},
            "limits": limits or {},
        }
    )
    return create_broker(settings, KindRegistry())


def unique_prefix() -> str:
    """A key prefix of its own, so tests sharing one redis-server never meet."""
    return f"t{secrets.token_hex(4)}"


async def receive(subscription: Subscription, count: int, timeout_s: float = 5.0) -> list[Event]:
    """Take events as the subscription is woken until ``count`` have arrived."""
    events: list[Event] = []
    async with asyncio.timeout(timeout_s):
        while len(events) < count:
            batch = subscription.take()
            if batch:
                events += batch
                continue
            await subscription.wake.wait()
            subscription.wake.clear()
    return events


async def ended(subscription: Subscription, timeout_s: float = 10.0) -> None:
    """Wait until the broker ends ``subscription`` (a reload or close), draining what comes."""
    async with asyncio.timeout(timeout_s):
        while subscription.closed_reason is None:
            await subscription.wake.wait()
            subscription.wake.clear()
            subscription.take()
