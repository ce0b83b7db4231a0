"""The logtail source's figures (``LogTailSource.stats``) and how ``/metrics`` shows them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
from prometheus_client.parser import text_string_to_metric_families

from app.events import Event, State
from app.serve.runtime import Runtime, build_runtime
from app.settings import settings_from_dict
from app.sources.logtail.source import READ_CHUNK_BYTES, LogTailConfig, LogTailSource
from tests.support.waiting import until


class Lines:
    """A ``publish`` that records lines; while ``gate`` is clear, it blocks (a stuck consumer)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(
        self, channel: str, kind: str, data: dict[str, Any], state: State | None = None
    ) -> Event:
        await self.gate.wait()
        self.lines.append(data["line"])
        return Event(str(len(self.lines)), channel, kind, time.time(), data, 1, 1)


@contextlib.asynccontextmanager
async def following(path: Path, **options: Any) -> AsyncIterator[tuple[LogTailSource, Lines]]:
    """A logtail source on ``path``, watching, until the block ends (it must stop within 2 s)."""
    config = msgspec.convert({"type": "logtail", "path": str(path), **options}, LogTailConfig)
    source, published, stop = LogTailSource(config), Lines(), asyncio.Event()
    task = asyncio.create_task(source.run(published, stop))
    try:
        await until(lambda: source.ready.is_set() or task.done(), "watching")
        if task.done():
            task.result()
        yield source, published
    finally:
        stop.set()
        published.gate.set()
        await asyncio.wait_for(task, timeout=10)


def append(path: Path, lines: list[str]) -> None:
    with path.open("ab") as handle:
        handle.write("".join(f"{line}\n" for line in lines).encode())


def numbered(prefix: str, count: int) -> list[str]:
    return [f"{prefix} {n:06d}" for n in range(count)]


async def test_a_rename_rotation_is_counted_once(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.touch()
    async with following(path) as (source, published):
        append(path, numbered("old", 20))
        await until(lambda: len(published.lines) == 20, "20 lines")
        os.rename(path, tmp_path / "app.log.1")
        append(path, numbered("new", 20))
        await until(lambda: len(published.lines) == 40, "40 lines")
        await until(lambda: source.stats.rotations["rename"] == 1, "one rename")
        assert source.stats.lines == 40
        assert source.stats.rotations == {"rename": 1, "copytruncate": 0, "truncate": 0}
        await until(lambda: source.stats.lag_bytes == 0, "caught up")


async def test_copytruncate_and_truncation_are_told_apart(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.touch()
    async with following(path) as (source, published):
        append(path, numbered("first", 30))
        await until(lambda: len(published.lines) == 30, "30 lines")
        shutil.copyfile(path, tmp_path / "app.log.1")
        os.truncate(path, 0)
        append(path, numbered("second", 10))
        await until(lambda: len(published.lines) == 40, "40 lines")
        (tmp_path / "app.log.1").unlink()
        os.truncate(path, 0)
        append(path, numbered("third", 5))
        await until(lambda: len(published.lines) == 45, "45 lines")
        assert source.stats.rotations == {"rename": 0, "copytruncate": 1, "truncate": 1}


async def test_lag_bytes_is_what_was_written_and_not_read_yet(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.touch()
    lines = numbered("x" * 90, 4 * READ_CHUNK_BYTES // 100)
    async with following(path) as (source, published):
        published.gate.clear()
        append(path, lines)
        size = path.stat().st_size
        # a chunk is read, then its first line waits at the gate: the rest is lag
        await until(lambda: source.stats.lag_bytes > 0, "lagging")
        assert source.stats.lag_bytes <= size
        published.gate.set()
        await until(lambda: len(published.lines) == len(lines), "every line")
        await until(lambda: source.stats.lag_bytes == 0, "caught up")
    assert published.lines == lines


async def test_metrics_show_each_logtail_source(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.touch()
    settings = settings_from_dict({"sources": [{"type": "logtail", "path": str(path)}]})
    runtime = build_runtime(settings)
    await runtime.start()
    try:
        await until(lambda: watching(runtime), "the source watching")
        append(path, numbered("old", 3))
        os.rename(path, tmp_path / "app.log.1")
        append(path, numbered("new", 3))
        await until(lambda: scrape(runtime).get(ROTATED) == 1.0, "a rotation in /metrics")
        samples = scrape(runtime)
    finally:
        await runtime.stop()
    assert samples[("pulseboard_logtail_lag_bytes", (("source", "logtail#0"),))] == 0.0
    assert samples[("pulseboard_broker_errors_total", ())] == 0.0
    assert samples[("pulseboard_broker_reconnects_total", ())] == 0.0


def watching(runtime: Runtime) -> bool:
    source = runtime.runner.stats["logtail#0"].source
    return isinstance(source, LogTailSource) and source.ready.is_set()


ROTATED = ("pulseboard_logtail_rotations_total", (("how", "rename"), ("source", "logtail#0")))


def scrape(runtime: Runtime) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = runtime.metrics.exposition().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_count_refused_files_by_reason(tmp_path: Path) -> None:
    (tmp_path / "environ.log").symlink_to("/proc/self/environ")
    settings = settings_from_dict(
        {"sources": [{"type": "logtail", "path": str(tmp_path / "*.log")}]}
    )
    runtime = build_runtime(settings)
    await runtime.start()
    try:
        await until(lambda: scrape(runtime).get(REFUSED) == 1.0, "a refusal in /metrics")
    finally:
        await runtime.stop()


REFUSED = ("pulseboard_logtail_refused_total", (("reason", "system_path"), ("source", "logtail#0")))
