"""Two or more real ``pulseboard serve`` processes sharing one real redis-server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.broker.conftest import RedisServer, unique_prefix
from tests.broker.conftest import redis_server as redis_server  # the session's shared Redis
from tests.support.server import ServerProcess

GatewayFactory = Callable[..., ServerProcess]


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
