"""logtail across restarts (issue 14.2): real brokers, real files, real logrotate.

Each test runs the broker and the source as the server does (a Supervisor that
restores the checkpoints the broker stored), stops both, changes the files as
the world would while the server is down, and starts both again on the same
database (or Redis prefix).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.broker.base import Broker
from app.sources.base import Supervisor, configure_sources
from app.sources.logtail.source import LOGTAIL, LogTailSource
from tests.broker.conftest import RedisServer, build_broker, unique_prefix
from tests.broker.conftest import redis_server as redis_server  # the session's shared Redis
from tests.sources.test_logtail_logrotate import logrotate
from tests.support.waiting import answer, until

BACKENDS = ["sqlite", pytest.param("redis", marks=pytest.mark.redis)]


@pytest.fixture
def broker_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A durable broker for the test: a database file, or a prefix on the session's Redis."""
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        return f"{server.url}#{unique_prefix()}"
    return f"sqlite:///{tmp_path}/state/pb.db"


@contextlib.asynccontextmanager
async def running(url: str, path: Path, **options: Any) -> AsyncIterator[Broker]:
    """A broker and a supervised logtail source on ``path``, as ``serve`` runs them."""
    url, _, prefix = url.partition("#")
    broker = build_broker(url, prefix=prefix or "pb", history=10_000)
    await broker.start()
    entry = {"type": "logtail", "path": str(path), "flush_timeout": 1.0, **options}
    sources = configure_sources([entry], {"logtail": LOGTAIL})
    supervisor = Supervisor(sources, broker.publish, broker.load_state, broker.save_state)
    supervisor.start()
    try:
        stat = supervisor.stats[sources[0].label]
        await until(lambda: _watching(stat.source) or stat.crashes > 0, "the tailer watching")
        assert stat.crashes == 0, stat.last_error
        yield broker
    finally:
        await supervisor.stop()
        await broker.close()


def _watching(source: object) -> bool:
    return isinstance(source, LogTailSource) and source.ready.is_set()


async def published(broker: Broker, channel: str) -> list[str]:
    """The lines in ``channel``'s history, oldest first."""
    page = await broker.history(channel, None, 100_000)
    return [str(event.data["line"]) for event in page.events]


async def delivered(broker: Broker, count: int, channel: str = "log.app") -> list[str]:
    """The lines published to ``channel`` once there are ``count`` (fails after 30 s)."""
    what = f"{count} lines in {channel}"
    return await answer(lambda: published(broker, channel), lambda got: len(got) >= count, what)


async def settled(broker: Broker, writer: Any, channel: str = "log.app") -> list[str]:
    """Everything delivered up to a last line written now (anything repeated comes before)."""
    last = writer.line("last line")
    what = f"{last!r} in {channel}"
    return await answer(lambda: published(broker, channel), lambda got: last in got, what)


@pytest.mark.parametrize("broker_url", BACKENDS, indirect=True)
async def test_lines_written_while_down_are_delivered_once(
    broker_url: str, log_dir: Path, make_writer: Any
) -> None:
    path = log_dir / "app.log"
    writer = make_writer(path)
    writer.lines(150)
    async with running(broker_url, path, lines=100) as broker:
        await delivered(broker, 100)
        writer.lines(5)
        await delivered(broker, 105)
    writer.lines(7)  # while down
    async with running(broker_url, path, lines=100) as broker:
        lines = await settled(broker, writer)
    assert lines == writer.written[50:]


async def test_a_partial_line_published_by_the_flush_timeout_is_not_published_again(
    tmp_path: Path, log_dir: Path, make_writer: Any
) -> None:
    url, path = f"sqlite:///{tmp_path}/pb.db", log_dir / "app.log"
    writer = make_writer(path)
    writer.lines(2)
    async with running(url, path) as broker:
        await delivered(broker, 2)
        writer.write(b"half")
        await delivered(broker, 3)  # after flush_timeout (1 s) without a newline
    writer.write(b" done\n")
    async with running(url, path) as broker:
        lines = await settled(broker, writer)
        numbers = [
            event.data["lineno"] for event in (await broker.history("log.app", None, 9)).events
        ]
    assert lines == ["line 000000", "line 000001", "half", " done", "last line"]
    assert numbers == [1, 2, 3, 3, 4]  # the rest of a flushed line keeps its number


@pytest.mark.parametrize("broker_url", BACKENDS, indirect=True)
async def test_an_empty_file_at_the_first_start_loses_nothing_written_while_down(
    broker_url: str, log_dir: Path, make_writer: Any
) -> None:
    path = log_dir / "app.log"
    writer = make_writer(path)  # empty: nothing to publish, yet its mark is stored
    async with running(broker_url, path) as broker:
        assert set(await broker.load_state("logtail:")) == {f"logtail:{path}"}
    writer.lines(7)  # while down
    async with running(broker_url, path) as broker:
        lines = await settled(broker, writer)
    assert lines == writer.written


async def test_lines_0_starts_at_the_end_once_and_continues_there_after_a_restart(
    tmp_path: Path, log_dir: Path, make_writer: Any
) -> None:
    url, path = f"sqlite:///{tmp_path}/pb.db", log_dir / "app.log"
    writer = make_writer(path)
    writer.lines(20)  # before the first start: not wanted
    async with running(url, path, lines=0) as broker:
        assert await broker.load_state("logtail:")
    writer.lines(5)  # while down: wanted
    async with running(url, path, lines=0) as broker:
        lines = await settled(broker, writer)
    assert lines == writer.written[20:]


@pytest.mark.parametrize("broker_url", BACKENDS, indirect=True)
async def test_a_rename_rotation_while_down_is_read_to_its_end_first(
    broker_url: str, log_dir: Path, rotate_dir: Path, make_writer: Any
) -> None:
    path = log_dir / "app.log"
    writer = make_writer(path)
    async with running(broker_url, path) as broker:
        writer.lines(5)
        await delivered(broker, 5)
    writer.lines(3)  # to the file that is rotated away
    await logrotate(rotate_dir, path, "create")
    writer.lines(2)  # the daemon has not reopened yet
    writer.reopen()
    writer.lines(4)  # to the new app.log
    async with running(broker_url, path) as broker:
        lines = await settled(broker, writer)
    assert lines == writer.written


async def test_copytruncate_while_down_continues_in_the_copy(
    tmp_path: Path, log_dir: Path, rotate_dir: Path, make_writer: Any
) -> None:
    url, path = f"sqlite:///{tmp_path}/pb.db", log_dir / "app.log"
    writer = make_writer(path)
    async with running(url, path) as broker:
        writer.lines(5)
        await delivered(broker, 5)
    writer.lines(3)
    await logrotate(rotate_dir, path, "copytruncate")
    writer.lines(4)  # the same handle: O_APPEND writes at the truncated file's end
    async with running(url, path) as broker:
        lines = await settled(broker, writer)
    assert lines == writer.written


async def test_lines_apply_only_to_a_file_seen_for_the_first_time(
    tmp_path: Path, log_dir: Path, make_writer: Any
) -> None:
    url = f"sqlite:///{tmp_path}/pb.db"
    seen = make_writer(log_dir / "seen.log")
    seen.lines(50)
    async with running(url, log_dir / "*.log", lines=10) as broker:
        assert await delivered(broker, 10, "log.seen") == seen.written[40:]
    seen.lines(20)  # more than ``lines``: all of them are delivered after the restart
    new = make_writer(log_dir / "new.log")  # a file that appeared while down: its last 10 lines
    new.lines(50)
    async with running(url, log_dir / "*.log", lines=10) as broker:
        seen_lines = await settled(broker, seen, "log.seen")
        await delivered(broker, 10, "log.new")  # the new file is followed: a line written now...
        new_lines = await settled(broker, new, "log.new")  # ...comes after anything repeated
    assert seen_lines == seen.written[40:]
    assert new_lines == new.written[40:]


async def test_the_checkpoint_of_a_deleted_file_is_dropped(
    tmp_path: Path, log_dir: Path, make_writer: Any
) -> None:
    url = f"sqlite:///{tmp_path}/pb.db"
    gone, kept = make_writer(log_dir / "gone.log"), make_writer(log_dir / "kept.log")
    async with running(url, log_dir / "*.log") as broker:
        gone.lines(2)
        kept.lines(2)
        await delivered(broker, 2, "log.gone")
        await delivered(broker, 2, "log.kept")
        keys = set(await broker.load_state("logtail:"))
    assert keys == {f"logtail:{log_dir}/gone.log", f"logtail:{log_dir}/kept.log"}
    (log_dir / "gone.log").unlink()
    async with running(url, log_dir / "*.log") as broker:
        await settled(broker, kept, "log.kept")
        keys = set(await broker.load_state("logtail:"))
    assert keys == {f"logtail:{log_dir}/kept.log"}
