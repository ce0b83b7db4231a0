"""A real server per test module (or per test where the config matters)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import ServerProcess

ServerFactory = Callable[[dict[str, Any]], ServerProcess]


def _check_clean(server: ServerProcess) -> None:
    log = server.log()
    assert "Traceback" not in log, log


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[ServerFactory]:
    """Start servers with a given config; each is stopped (and its log checked) afterwards."""
    servers: list[ServerProcess] = []

    def start(config: dict[str, Any]) -> ServerProcess:
        server = ServerProcess(tmp_path, config).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
        _check_clean(server)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the module: short heartbeat, deep history, no publish rate in the way.

    Its tests publish thousands of events as fast as the machine goes; with the
    default bucket the verdict would depend on the machine's speed. The rate
    limiter has tests of its own (tests/test_ratelimit.py, test_security.py).
    """
    config = {
        "server": {"heartbeat": 0.3, "retry_ms": 1500, "max_lag": 20000},
        "broker": {"history": 10000},
        "limits": {"publish_rate": 1_000_000, "publish_burst": 1_000_000},
        "channels": [
            {"name": "ops.deploys", "kind": "notify"},
            {"name": "chat.lobby", "kind": "chat"},
            {"name": "log.app", "kind": "log"},
            {"name": "ticker", "kind": "ticker"},
        ],
    }
    server = ServerProcess(tmp_path_factory.mktemp("server"), config).start()
    yield server
    server.stop()
    _check_clean(server)
