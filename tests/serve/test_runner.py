"""One owner starts and stops the sources and alert rules (``app.serve.runner.SourceRunner``).

The runtime starts it when it runs its own sources, the lease when this
process holds the deployment's lease; neither builds a supervisor itself.
"""

from __future__ import annotations

import asyncio

from app.serve.runtime import Runtime, build_runtime
from app.settings import settings_from_dict
from tests.support.waiting import until

SETTINGS = {
    "sources": [{"type": "ticker", "interval": 0.01, "seed": 7}],
    "alerts": [{"name": "boom", "channel": "log.*", "pattern": "boom", "notify": "ops.alerts"}],
}


def alert_tasks() -> list[asyncio.Task[object]]:
    return [task for task in asyncio.all_tasks() if task.get_name() == "alerts"]


def ticker_running(runtime: Runtime) -> bool:
    return runtime.source_states().get("ticker#0", False)


async def test_a_second_start_keeps_the_running_sources_instead_of_orphaning_them() -> None:
    runtime = build_runtime(settings_from_dict(SETTINGS), run_sources=False)
    await runtime.start()
    try:
        assert not runtime.runner.running
        runtime.runner.start(runtime.publish)
        await until(lambda: ticker_running(runtime), "the ticker running")
        first = runtime.runner.stats["ticker#0"].source
        runtime.runner.start(runtime.publish)  # the lease taken while they already run
        assert runtime.runner.stats["ticker#0"].source is first
        assert len(alert_tasks()) == 1
    finally:
        await runtime.stop()
    assert not runtime.runner.running
    assert runtime.source_states() == {}
    assert alert_tasks() == []


async def test_the_runtime_that_runs_its_sources_stops_sources_and_alerts_together() -> None:
    runtime = build_runtime(settings_from_dict(SETTINGS))
    await runtime.start()
    try:
        await until(lambda: ticker_running(runtime), "the ticker running")
        assert runtime.ready
        assert len(alert_tasks()) == 1
    finally:
        await runtime.stop()
    assert runtime.source_states() == {}
    assert alert_tasks() == []


async def test_stopped_sources_can_start_again_with_fresh_alert_rules() -> None:
    runtime = build_runtime(settings_from_dict(SETTINGS), run_sources=False)
    await runtime.start()
    try:
        for _ in range(2):  # the lease lost and taken back
            runtime.runner.start(runtime.publish)
            await until(lambda: ticker_running(runtime), "the ticker running")
            assert len(alert_tasks()) == 1
            await runtime.runner.stop()
            assert alert_tasks() == []
    finally:
        await runtime.stop()
