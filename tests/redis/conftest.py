"""Two or more real ``pulseboard serve`` processes sharing one real redis-server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.broker.conftest import REDIS_SERVER, RedisServer, unique_prefix
from tests.conftest import require_binary
from tests.support.server import ServerProcess

GatewayFactory = Callable[..., ServerProcess]


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the module; deployments keep apart by key prefix."""
    require_binary(REDIS_SERVER, "the multi-process tests need a real Redis")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def deployment(redis_server: RedisServer) -> dict[str, Any]:
    """A config for one deployment: its own key prefix on the shared Redis."""
    return {
        "server": {"heartbeat": 0.5, "retry_ms": 500},
        "broker": {"url": redis_server.url, "key_prefix": unique_prefix(), "history": 100},
        "channels": [{"name": "ops.deploys", "kind": "notify"}],
    }


@pytest.fixture
def start_gateway(tmp_path: Path) -> Iterator[GatewayFactory]:
    """Start ``serve`` processes; each is stopped and its log checked for tracebacks."""
    gateways: list[ServerProcess] = []

    def start(config: dict[str, Any], *flags: str) -> ServerProcess:
        gateway = ServerProcess(tmp_path, config, flags=flags).start()
        gateways.append(gateway)
        return gateway

    yield start
    for gateway in gateways:
        if gateway.process is not None and gateway.process.returncode is None:
            gateway.stop()
        log = gateway.log()
        assert "Traceback" not in log, log
