"""demo-log: realistic lines in mixed levels land in files a logtail source can follow."""

from __future__ import annotations

import asyncio
import random
import re
from pathlib import Path
from typing import Any

import msgspec

from app.alerts import AlertEngine
from app.broker.base import Start
from app.broker.memory import MemoryBroker
from app.events import Event, KindRegistry, State
from app.settings import load_settings
from app.sources.base import (
    Supervisor,
    configure_sources,
    load_source_types,
    pause_unless_stopped,
)
from app.sources.demolog import (
    DEMO_LOG,
    DemoLogConfig,
    DemoLogSource,
    access_line,
    app_lines,
    append_lines,
)

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_800_000_000.0
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def file_names(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


async def nothing_published(channel: str, kind: str, data: dict[str, Any]) -> Event:
    raise AssertionError("demo-log publishes through the files, not directly")


def test_application_lines_come_in_every_level_with_colour_and_tracebacks() -> None:
    rng = random.Random(5)
    records = [app_lines(rng, NOW) for _ in range(500)]
    firsts = [record[0] for record in records]
    for level in ("ERROR", "WARN", "INFO", "DEBUG"):
        assert any(f" {level} " in line for line in firsts), level
    assert any(ANSI.search(line) for line in firsts)
    tracebacks = [record for record in records if len(record) > 1]
    assert tracebacks
    assert all(" ERROR " in record[0] for record in tracebacks)
    assert all(record[1] == "Traceback (most recent call last):" for record in tracebacks)
    assert all("\n" not in line for record in records for line in record)


def test_access_lines_use_the_combined_format() -> None:
    line = access_line(random.Random(1), NOW)
    assert re.match(
        r'203\.0\.113\.\d+ - - \[15/Jan/2027:08:00:00 \+0000\] "[A-Z]+ /\S* HTTP/1\.1" \d{3} ', line
    )


def test_a_file_past_max_bytes_is_rotated_by_rename(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    append_lines(log, ["x" * 100] * 20, max_bytes=1024)
    append_lines(log, ["fresh"], max_bytes=1024)
    assert log.read_text() == "fresh\n"
    assert (tmp_path / "app.log.1").read_text().count("\n") == 20


async def test_run_writes_records_into_a_new_directory_and_stops(tmp_path: Path) -> None:
    directory = tmp_path / "var" / "log"
    config = msgspec.convert({"type": "demo-log", "path": str(directory)}, DemoLogConfig)
    stop = asyncio.Event()
    pauses: list[float] = []

    async def pause(stop_: asyncio.Event, delay_s: float) -> None:
        pauses.append(delay_s)
        if len(pauses) == 40:
            stop.set()

    source = DemoLogSource(config, random.Random(2), clock=lambda: NOW, pause=pause)
    await asyncio.wait_for(source.run(nothing_published, stop), timeout=10)

    assert file_names(directory) == ["access.log", "app.log"]
    assert set(pauses) == {1 / 3.0}
    access = (directory / "access.log").read_text().splitlines()
    app = (directory / "app.log").read_text().splitlines()
    assert len(access) + sum(1 for line in app if line.startswith("2027-")) == 40


async def test_the_real_pause_ends_promptly_on_stop(tmp_path: Path) -> None:
    config = msgspec.convert(
        {"type": "demo-log", "path": str(tmp_path), "rate": 0.001}, DemoLogConfig
    )
    stop, pausing = asyncio.Event(), asyncio.Event()

    async def real_pause(stop_: asyncio.Event, delay_s: float) -> None:
        pausing.set()
        await pause_unless_stopped(stop_, delay_s)

    task = asyncio.create_task(DemoLogSource(config, pause=real_pause).run(nothing_published, stop))
    await asyncio.wait_for(pausing.wait(), timeout=10)
    stop.set()
    await asyncio.wait_for(task, timeout=10)
    assert file_names(tmp_path) in (["access.log"], ["app.log"])


def test_it_declares_no_channels() -> None:
    assert DEMO_LOG.channels(DemoLogConfig()) == []


async def test_the_default_demo_moves_every_source_panel_within_seconds(tmp_path: Path) -> None:
    """config/default.toml as `make run` uses it, its files under tmp_path, the writer faster."""
    settings = load_settings(ROOT / "config" / "default.toml", environ={})
    types = load_source_types()
    entries = [_in(tmp_path, entry) for entry in settings.sources]
    sources = configure_sources(entries, types)
    kinds = KindRegistry()
    broker = MemoryBroker(kinds, history_size=1000, max_lag=1000)

    async def publish(
        channel: str, kind: str, data: dict[str, Any], state: State | None = None
    ) -> Event:
        return await broker.publish(channel, kind, kinds.get(kind).validate(data), state)

    moving = {"ticker", "log.app", "log.access", "ops.alerts"}
    assert moving <= {channel.name for channel in settings.channels}
    seen: set[str] = set()
    stop = asyncio.Event()
    engine = AlertEngine(settings.alerts, broker)
    alerting = asyncio.create_task(engine.run(stop))
    await asyncio.wait_for(engine.watching.wait(), timeout=10)
    supervisor = Supervisor(sources, publish)
    async with broker.subscribe(sorted(moving), Start()) as subscription:
        supervisor.start()
        try:
            async with asyncio.timeout(20):
                while not moving <= seen:
                    await subscription.wake.wait()
                    subscription.wake.clear()
                    seen.update(event.channel for event in subscription.take())
        finally:
            stop.set()
            await supervisor.stop()
            await asyncio.wait_for(alerting, timeout=10)
    assert all(stat.crashes == 0 for stat in supervisor.stats.values())


def _in(directory: Path, entry: dict[str, Any]) -> dict[str, Any]:
    """The demo's log paths moved under ``directory``, and the writer sped up to fit a test."""
    if entry["type"] == "demo-log":
        return {**entry, "path": str(directory), "rate": 40.0, "seed": 1}
    if entry["type"] == "logtail":
        return {**entry, "path": str(directory / Path(entry["path"]).name)}
    return entry
