"""Scale-out on redis://: every source runs once per deployment, workers, takeover.

Two plain ``serve`` processes share one config (with a seeded ticker) and one
Redis: a duplicated source would publish the same seeded series twice, so a
tick seen twice is exactly what these tests look for.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.crash_loop import history
from tests.redis.conftest import GatewayFactory
from tests.sources.conftest import LogWriter
from tests.support.server import ROOT, ServerProcess
from tests.support.sse_client import SSEStream
from tests.support.waiting import answer

pytestmark = pytest.mark.redis

TICK_S = 0.1


@pytest.fixture
def ticker_deployment(deployment: dict[str, Any]) -> dict[str, Any]:
    deployment["channels"] = [{"name": "ticker", "kind": "ticker"}]
    deployment["sources"] = [
        {
            "type": "ticker",
            "channel": "ticker",
            "symbols": ["ACME", "INIT"],
            "interval": TICK_S,
            "seed": 7,
        }
    ]
    return deployment


async def ticks(gateway: ServerProcess, count: int) -> list[dict[str, Any]]:
    async with SSEStream(f"{gateway.url}/events?channel=ticker&format=json") as stream:
        events = await stream.events(count, within=20)
    return [{"id": event.id, **json.loads(event.data)["data"]} for event in events]


def assert_each_tick_once(received: list[dict[str, Any]]) -> None:
    quotes = [(t["symbol"], t["price"], t["volume"]) for t in received]
    assert len(set(quotes)) == len(quotes), "a tick was published twice"
    assert len({t["id"] for t in received}) == len(received)


def lease_holders(*gateways: ServerProcess) -> list[ServerProcess]:
    return [g for g in gateways if "sources lease: held" in g.log()]


@pytest.mark.slow
async def test_two_gateways_with_one_config_run_the_ticker_once(
    start_gateway: GatewayFactory, ticker_deployment: dict[str, Any]
) -> None:
    a = start_gateway(ticker_deployment)
    b = start_gateway(ticker_deployment)
    received_a = await ticks(a, 30)
    received_b = await ticks(b, 30)
    assert_each_tick_once(received_a)
    assert_each_tick_once(received_b)
    assert len(lease_holders(a, b)) == 1


@pytest.mark.slow
async def test_when_the_source_process_dies_another_takes_over(
    start_gateway: GatewayFactory, ticker_deployment: dict[str, Any]
) -> None:
    a = start_gateway(ticker_deployment)
    b = start_gateway(ticker_deployment)
    await ticks(a, 4)
    (holder,) = lease_holders(a, b)
    survivor = b if holder is a else a
    holder.stop(signal.SIGKILL)
    received = await ticks(survivor, 10)
    assert_each_tick_once(received)
    assert lease_holders(survivor) == [survivor]


async def log_lines(gateway: ServerProcess, until_line: str) -> list[str]:
    """The lines of ``log.app`` on ``gateway`` once ``until_line`` is among them (30 s at most)."""

    async def lines() -> list[str]:
        with contextlib.suppress(AssertionError):  # 404 until the channel exists
            return [event["data"]["line"] for event in await history(gateway.url, "log.app")]
        return []

    return await answer(lines, lambda got: until_line in got, f"{until_line!r} in log.app")


@pytest.mark.slow
async def test_the_gateway_taking_over_the_sources_continues_the_log_where_it_stopped(
    start_gateway: GatewayFactory, deployment: dict[str, Any], tmp_path: Path
) -> None:
    writer = LogWriter(tmp_path / "app.log")
    writer.lines(3)
    deployment["sources"] = [{"type": "logtail", "path": str(writer.path), "lines": 100}]
    a, b = start_gateway(deployment), start_gateway(deployment)
    try:
        await log_lines(a, writer.written[-1])
        (holder,) = lease_holders(a, b)
        survivor = b if holder is a else a
        writer.lines(5)
        await log_lines(survivor, writer.written[-1])
        holder.stop(signal.SIGKILL)
        writer.lines(5)  # nobody tails the file until the lease expires
        await log_lines(survivor, writer.line("last line"))
        lines = await log_lines(survivor, writer.line("after the last line"))  # repeats: before it
    finally:
        writer.close()
    assert lines == writer.written  # the offset was in Redis, beside the events
    assert lease_holders(survivor) == [survivor]


@pytest.mark.slow
async def test_a_gateway_without_sources_never_runs_them(
    start_gateway: GatewayFactory, ticker_deployment: dict[str, Any]
) -> None:
    gateway = start_gateway(ticker_deployment, "--no-sources")
    sources = start_gateway(ticker_deployment)
    received = await ticks(gateway, 10)
    assert_each_tick_once(received)
    assert lease_holders(gateway, sources) == [sources]


@pytest.mark.slow
async def test_workers_share_one_port_and_run_the_ticker_once(
    start_gateway: GatewayFactory, ticker_deployment: dict[str, Any]
) -> None:
    gateway = start_gateway(ticker_deployment, "--workers", "2")
    received = [await ticks(gateway, 10) for _ in range(4)]
    for batch in received:
        assert_each_tick_once(batch)
    assert gateway.log().count("sources lease: held") == 1
    assert gateway.log().count("Running on") == 2
    assert gateway.stop() == 0


@pytest.mark.slow
def test_a_browser_signed_in_on_one_worker_is_signed_in_on_all(
    start_gateway: GatewayFactory, deployment: dict[str, Any]
) -> None:
    deployment["auth"] = {"read_tokens": ["reader-token-0123"]}  # no secret_key: workers draw one
    gateway = start_gateway(deployment, "--workers", "2")
    fresh_connections = httpx.Limits(max_keepalive_connections=0)  # each request may hit either
    with httpx.Client(base_url=gateway.url, limits=fresh_connections) as browser:
        signed_in = browser.post("/login", data={"token": "reader-token-0123", "next": "/"})
        assert signed_in.status_code == 302
        pages = [browser.get("/").status_code for _ in range(40)]
    assert pages == [200] * 40
    assert gateway.stop() == 0


def test_workers_on_the_memory_broker_are_refused() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", "serve", "--workers", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PULSEBOARD_BROKER__URL": "memory://", "PATH": "/usr/bin:/bin"},
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "--workers 2" in result.stderr and "needs a shared broker" in result.stderr


def test_an_unreachable_redis_is_refused_at_start_naming_the_key() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", "serve"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PULSEBOARD_BROKER__URL": "redis://127.0.0.1:1/0", "PATH": "/usr/bin:/bin"},
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("pulseboard: broker.url: cannot reach redis://127.0.0.1:1/0")
    assert "Traceback" not in result.stderr


def start_sources_run(config: Path, log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "app", "sources", "run", "--config", str(config)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip


@pytest.mark.slow
async def test_sources_run_beside_gateways_without_sources(
    start_gateway: GatewayFactory, ticker_deployment: dict[str, Any], tmp_path
) -> None:
    from tests.support.server import to_toml

    gateway = start_gateway(ticker_deployment, "--no-sources")
    config = tmp_path / "sources.toml"
    config.write_text(to_toml(ticker_deployment))
    runner = start_sources_run(config, tmp_path / "sources.log")
    try:
        received = await ticks(gateway, 10)
        assert_each_tick_once(received)
    finally:
        runner.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(runner.wait, 15) == 0
    output = (tmp_path / "sources.log").read_text()
    assert "sources lease: held" in output
    assert "Traceback" not in output


def test_sources_run_on_the_memory_broker_is_refused(tmp_path) -> None:
    config = tmp_path / "memory.toml"
    config.write_text('[broker]\nurl = "memory://"\n')
    result = subprocess.run(
        [sys.executable, "-m", "app", "sources", "run", "--config", str(config)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "broker.url" in result.stderr
