"""Helpers for the logtail tests: a collecting ``publish``, a running tailer, a log writer."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import msgspec
import pytest

from app.broker.base import apply_state
from app.events import Event, State
from app.sources.logtail.source import LOGTAIL, LogTailConfig, LogTailSource, LogTailStats


class Collector:
    """A ``publish`` that records what it is given and lets a test await a count."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.events: list[tuple[str, str, dict[str, Any]]] = []
        self.state: dict[str, str] = {}  # the checkpoints, as a broker would store them
        self._seq = itertools.count(1)
        self._changed = asyncio.Event()
        self.stats = LogTailStats()  # the tailer's, once ``tailing`` runs one

    async def __call__(
        self, channel: str, kind: str, data: dict[str, Any], state: State | None = None
    ) -> Event:
        self.events.append((channel, kind, data))
        apply_state(self.state, state or {})
        self._changed.set()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)  # a slow broker is what a test asks for here
        seq = next(self._seq)
        return Event(str(seq), channel, kind, time.time(), data, seq, seq)

    def lines(self, file: str | None = None) -> list[str]:
        """The published lines, in order (of one file when ``file`` is given)."""
        return [d["line"] for _c, _k, d in self.events if file is None or d["file"] == file]

    async def wait_for(self, count: int, timeout_s: float = 10.0) -> list[str]:
        """Wait until ``count`` lines were published (or fail after ``timeout_s``)."""
        await self._until(lambda: len(self.events) >= count, f"{count} lines", timeout_s)
        return self.lines()

    async def wait_for_line(self, text: str, timeout_s: float = 10.0) -> list[str]:
        """Wait until a line ``text`` was published (or fail after ``timeout_s``)."""
        await self._until(lambda: text in self.lines(), repr(text), timeout_s)
        return self.lines()

    async def _until(self, done: Callable[[], bool], what: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no {what} after {timeout_s}s: {len(self.events)} lines published")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def settle(self, quiet_s: float = 0.5) -> None:
        """Wait until nothing was published for ``quiet_s`` (to catch late duplicates)."""
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), quiet_s)
            except TimeoutError:
                return
        pytest.fail("lines kept arriving for 30 s")


class LogWriter:
    """Appends numbered lines through a handle it keeps open, like a daemon writing its log."""

    def __init__(self, path: Path, prefix: str = "line") -> None:
        self.path = path
        self.prefix = prefix
        self.written: list[str] = []
        self._lock = threading.Lock()
        self._handle = open(path, "ab", buffering=0)  # noqa: SIM115 - a long-lived handle

    def line(self, text: str | None = None) -> str:
        """Append one line (numbered unless ``text`` is given); return its text."""
        with self._lock:
            text = text if text is not None else f"{self.prefix} {len(self.written):06d}"
            self._handle.write(text.encode() + b"\n")
            self.written.append(text)
        return text

    def lines(self, count: int) -> list[str]:
        """Append ``count`` numbered lines, one write each."""
        return [self.line() for _ in range(count)]

    def write(self, data: bytes) -> None:
        """Append raw bytes."""
        self._handle.write(data)

    def reopen(self) -> None:
        """Close and open the path again (what a daemon does on SIGHUP after rotation)."""
        with self._lock:
            self._handle.close()
            self._handle = open(self.path, "ab", buffering=0)  # noqa: SIM115

    def close(self) -> None:
        """Close the handle."""
        self._handle.close()


class ContinuousWriter(threading.Thread):
    """Writes numbered lines every ``interval_s`` from a thread until stopped."""

    def __init__(self, writer: LogWriter, interval_s: float = 0.002) -> None:
        super().__init__(daemon=True)
        self.writer = writer
        self.interval_s = interval_s
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.interval_s):
            self.writer.line()

    def stop(self) -> None:
        """Stop writing and wait for the thread."""
        self._halt.set()
        self.join(timeout=5)


@contextlib.asynccontextmanager
async def tailing(
    path: Path | str, *, publish_delay_s: float = 0.0, **options: Any
) -> AsyncIterator[Collector]:
    """Run a logtail source on ``path`` until the block ends; it must stop within 2 s.

    ``publish_delay_s`` makes each publish slow, so that the tailer lags behind the writer.
    """
    config = msgspec.convert({"type": "logtail", "path": str(path), **options}, LogTailConfig)
    source = LOGTAIL.create(config)
    assert isinstance(source, LogTailSource)
    collector = Collector(publish_delay_s)
    collector.stats = source.stats
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(collector, stop))
    ready = asyncio.create_task(source.ready.wait())
    await asyncio.wait({task, ready}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    assert source.ready.is_set(), "the tailer did not start watching within 5 s"
    try:
        yield collector
    finally:
        stop.set()
        ready.cancel()
        await asyncio.wait_for(task, timeout=10)


@pytest.fixture
def tail() -> Callable[..., AbstractAsyncContextManager[Collector]]:
    """``async with tail(path, **options) as collector``: a running logtail source."""
    return tailing


@pytest.fixture
def make_writer() -> Iterator[Callable[..., LogWriter]]:
    """``make_writer(path, prefix="line")``: a LogWriter, closed after the test."""
    writers: list[LogWriter] = []

    def make(path: Path, prefix: str = "line") -> LogWriter:
        writers.append(LogWriter(path, prefix))
        return writers[-1]

    yield make
    for writer in writers:
        writer.close()


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    """A directory for the log files of one test."""
    directory = tmp_path / "log"
    directory.mkdir()
    return directory


@pytest.fixture
def rotate_dir(tmp_path: Path) -> Path:
    """Where logrotate keeps its config and state (beside, not inside, the log directory)."""
    directory = tmp_path / "logrotate"
    directory.mkdir()
    return directory


@pytest.fixture
def continuous_writer() -> Iterator[Callable[..., ContinuousWriter]]:
    """``continuous_writer(writer, interval_s)``: a started ContinuousWriter, stopped after."""
    started: list[ContinuousWriter] = []

    def start(writer: LogWriter, interval_s: float = 0.002) -> ContinuousWriter:
        started.append(ContinuousWriter(writer, interval_s))
        started[-1].start()
        return started[-1]

    yield start
    for thread in started:
        thread.stop()
