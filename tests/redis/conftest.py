"""Two or more real ``pulseboard serve`` processes sharing one real redis-server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.broker.conftest import REDIS_SERVER, RedisServer, unique_prefix
from tests.conftest import require_binary
from tests.support.server import ROOT, ServerProcess

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
        gateway = Gateway(tmp_path, config, *flags).start()
        gateways.append(gateway)
        return gateway

    yield start
    for gateway in gateways:
        if gateway.process is not None and gateway.process.returncode is None:
            gateway.stop()
        log = gateway.log()
        assert "Traceback" not in log, log


class Gateway(ServerProcess):
    """``pulseboard serve`` with extra command-line flags (``--workers``, ``--no-sources``)."""

    def __init__(self, workdir: Path, config: dict[str, Any], *flags: str) -> None:
        super().__init__(workdir, config)
        self.flags = flags

    def start(self, timeout_s: float = 20.0) -> Gateway:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PULSEBOARD_")}
        command = [sys.executable, "-m", "app", "serve", "--config", str(self.config_path)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*command, *self.flags],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**env, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited at start:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not answer within {timeout_s} s:\n{self.log()}")
