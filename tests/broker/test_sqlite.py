"""sqlite:// beyond the shared contract: durability, fsync, retention, bad files (issue 14.1)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from app.broker.base import Broker, Start
from app.broker.sqlite import SqliteBroker
from app.broker.sqlite_store import Retention, SqliteLog, StoreError, check_database
from app.events import Event, KindRegistry
from tests.broker.conftest import build_broker, receive
from tests.support.cli import pulseboard
from tests.support.server import to_toml


def note(number: int) -> dict[str, Any]:
    return {"message": f"message {number}", "level": "info"}


async def started(url: str, **options: Any) -> Broker:
    broker = build_broker(url, **options)
    await broker.start()
    return broker


async def test_a_publish_returns_once_its_event_is_on_disk(tmp_path: Path) -> None:
    broker = await started(f"sqlite:///{tmp_path}/pb.db")
    try:
        event = await broker.publish("ops.deploys", "notify", note(1))
        with sqlite3.connect(tmp_path / "pb.db") as reader:
            rows = reader.execute("SELECT seq, channel FROM events").fetchall()
    finally:
        await broker.close()
    assert rows == [(event.seq, "ops.deploys")]


async def test_concurrent_publishes_share_commits_and_keep_publish_order(tmp_path: Path) -> None:
    broker = await started(f"sqlite:///{tmp_path}/pb.db")
    try:
        async with broker.subscribe(["ops.*"], Start()) as sub:
            published = await asyncio.gather(
                *(broker.publish(f"ops.c{n % 3}", "notify", note(n)) for n in range(200))
            )
            received = await receive(sub, 200)
    finally:
        await broker.close()
    assert [e.id for e in received] == [e.id for e in published]
    assert [e.seq for e in published] == list(range(1, 201))


async def test_ids_keep_the_epoch_and_resume_across_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/pb.db"
    broker = await started(url, history=100)
    published = [await broker.publish("ops.deploys", "notify", note(n)) for n in range(5)]
    epoch = broker.epoch
    await broker.close()
    broker = await started(url, history=100)
    try:
        assert broker.epoch == epoch
        async with broker.subscribe(["ops.deploys"], Start(after=published[1].id)) as sub:
            assert sub.gap_channels == []
            replayed = sub.take()
            later = await broker.publish("ops.deploys", "notify", note(5))
            live = await receive(sub, 1)
    finally:
        await broker.close()
    assert [e.id for e in replayed] == [e.id for e in published[2:]]
    assert (later.seq, later.offset) == (6, 5)
    assert live[0].id == later.id


async def test_history_pages_from_the_database_beyond_the_ring(tmp_path: Path) -> None:
    broker = await started(f"sqlite:///{tmp_path}/pb.db", history=3)
    try:
        published = [await broker.publish("ops.deploys", "notify", note(n)) for n in range(10)]
        page = await broker.history("ops.deploys", published[1].id, 4)
    finally:
        await broker.close()
    assert ([e.id for e in page.events], page.gap) == ([e.id for e in published[2:6]], False)
    assert [e.data for e in page.events] == [note(n) for n in range(2, 6)]


async def test_scrollback_pages_from_the_database_beyond_the_ring(tmp_path: Path) -> None:
    """The log viewer's "load older" reaches back as far as the file keeps, not the ring."""
    broker = await started(f"sqlite:///{tmp_path}/pb.db", history=3)
    try:
        published = [await broker.publish("ops.deploys", "notify", note(n)) for n in range(10)]
        newest = await broker.before("ops.deploys", None, 5)
        older = await broker.before("ops.deploys", newest.events[0].id, 5)
        start = await broker.before("ops.deploys", older.events[0].id, 5)
    finally:
        await broker.close()
    ids = [e.id for e in published]
    assert [e.id for e in newest.events] == ids[5:]
    assert [e.id for e in older.events] == ids[:5]
    assert (start.events, start.gap) == ([], False)


@pytest.mark.parametrize(("fsync", "synchronous"), [(False, 1), (True, 2)])
def test_fsync_chooses_how_sqlite_syncs(tmp_path: Path, fsync: bool, synchronous: int) -> None:
    store = SqliteLog(tmp_path / "pb.db", fsync=fsync)
    try:
        assert store.synchronous == synchronous  # 1 NORMAL: process crash; 2 FULL: power loss
    finally:
        store.close()


def test_the_fsync_key_reaches_the_broker() -> None:
    broker = build_broker("sqlite:////nonexistent/pb.db", fsync=True)
    assert isinstance(broker, SqliteBroker) and broker.fsync


def events_of(store: SqliteLog, channel: str) -> list[int]:
    return [event.seq for event in store.newest(channel, 1_000_000)]


async def publish_at(broker: SqliteBroker, clock: list[float], count: int, channel: str) -> None:
    for n in range(count):
        await broker.publish(channel, "notify", note(n))
        clock[0] += 1.0


async def test_retention_by_count_keeps_at_least_history(tmp_path: Path) -> None:
    retention = Retention(history=3, max_events=5)
    broker = SqliteBroker(f"sqlite:///{tmp_path}/pb.db", KindRegistry(), retention, 1000)
    await broker.start()
    try:
        for n in range(12):
            await broker.publish("ops.a", "notify", note(n))
        await broker.publish("ops.b", "notify", note(0))
        assert broker.store is not None
        assert events_of(broker.store, "ops.a") == list(range(8, 13))  # the newest 5
        assert events_of(broker.store, "ops.b") == [13]
    finally:
        await broker.close()


async def test_commits_trim_a_channel_in_steps_and_the_periodic_trim_exactly(
    tmp_path: Path,
) -> None:
    """Trimming in every commit cost more than the insert: a channel is trimmed every tenth."""
    retention = Retention(history=20, max_events=30)  # trim_step(30) == 3
    broker = SqliteBroker(f"sqlite:///{tmp_path}/pb.db", KindRegistry(), retention, 1000)
    await broker.start()
    try:
        assert broker.store is not None
        for n in range(32):  # offsets 0..31: the commit of offset 30 trims to 30 events
            await broker.publish("ops.a", "notify", note(n))
        assert events_of(broker.store, "ops.a") == list(range(2, 33))  # 31: not yet trimmed
        await broker.trim()
        assert events_of(broker.store, "ops.a") == list(range(3, 33))
    finally:
        await broker.close()


async def test_no_id_is_handed_out_twice_after_every_event_is_dropped(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/pb.db"
    broker = SqliteBroker(url, KindRegistry(), Retention(history=100), 1000)
    await broker.start()
    for n in range(3):
        await broker.publish("ops.gone", "notify", note(n))
    assert broker.store is not None
    await broker._call(broker.store.drop_channels, ["ops.gone"])
    await broker.close()
    broker = SqliteBroker(url, KindRegistry(), Retention(history=100), 1000)
    await broker.start()
    try:
        event = await broker.publish("ops.new", "notify", note(0))
    finally:
        await broker.close()
    assert event.seq == 4


async def test_retention_by_age_spares_the_newest_history(tmp_path: Path) -> None:
    clock = [1_000_000.0]
    retention = Retention(history=2, max_events=100, max_age_s=5.0)
    broker = SqliteBroker(
        f"sqlite:///{tmp_path}/pb.db", KindRegistry(), retention, 1000, clock=lambda: clock[0]
    )
    await broker.start()
    try:
        await publish_at(broker, clock, 10, "ops.a")  # times 0..9 s after the start
        await publish_at(broker, clock, 3, "ops.old")  # 10..12 s
        clock[0] += 100.0  # everything is older than max_age now
        await broker.trim()
        assert broker.store is not None
        assert events_of(broker.store, "ops.a") == [9, 10]
        assert events_of(broker.store, "ops.old") == [12, 13]
    finally:
        await broker.close()


def test_max_bytes_drops_the_oldest_events_of_the_file(tmp_path: Path) -> None:
    store = SqliteLog(tmp_path / "pb.db")
    big = {"message": "x" * 2000, "level": "info"}
    try:
        for seq in range(1, 401):
            event = Event(f"{store.epoch}-{seq}", "ops.a", "notify", 0.0, big, seq, seq - 1)
            store.commit([event], keep=1_000_000)
        before = events_of(store, "ops.a")
        store.trim(Retention(history=1, max_events=1_000_000, max_bytes=200_000), now=0.0)
        after = events_of(store, "ops.a")
    finally:
        store.close()
    assert before == list(range(1, 401))
    assert after and after == list(range(after[0], 401)) and after[0] > 1
    assert len(after) * 2000 < 200_000


def test_a_corrupt_file_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "pb.db").write_bytes(b"this is not a database, just text" * 100)
    problem = check_database(f"sqlite:///{tmp_path}/pb.db")
    assert problem is not None and "not a database" in problem and "\n" not in problem


def test_an_unwritable_directory_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("a file where a directory should be")
    with pytest.raises(StoreError, match="cannot use the database") as raised:
        SqliteLog(tmp_path / "file" / "pb.db")
    assert "\n" not in str(raised.value)


def test_a_database_in_use_by_another_server_is_refused(tmp_path: Path) -> None:
    first = SqliteLog(tmp_path / "pb.db")
    try:
        assert "in use by another process" in (check_database(f"sqlite:///{tmp_path}/pb.db") or "")
    finally:
        first.close()
    assert check_database(f"sqlite:///{tmp_path}/pb.db") is None


@pytest.mark.parametrize("command", ["serve", "check-config"])
@pytest.mark.parametrize("damage", ["corrupt", "unwritable"])
def test_serve_and_check_config_exit_2_with_one_line(
    tmp_path: Path, command: str, damage: str
) -> None:
    if damage == "corrupt":
        (tmp_path / "pb.db").write_bytes(b"garbage" * 1000)
        database = tmp_path / "pb.db"
    else:
        (tmp_path / "file").write_text("not a directory")
        database = tmp_path / "file" / "pb.db"
    config = tmp_path / "pb.toml"
    config.write_text(to_toml({"broker": {"url": f"sqlite:///{database}"}}))
    args = ["serve", "--config", str(config)] if command == "serve" else [command, str(config)]
    done = pulseboard(*args)
    assert done.returncode == 2, done
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("pulseboard: broker.url: "), done.stderr


async def test_a_batch_is_one_commit_all_or_nothing(tmp_path: Path) -> None:
    broker = await started(f"sqlite:///{tmp_path}/pb.db")
    assert isinstance(broker, SqliteBroker) and broker.store is not None
    commits: list[int] = []
    commit = broker.store.commit

    def counted(events: list[Any], *args: Any) -> None:
        commits.append(len(events))
        commit(events, *args)

    broker.store.commit = counted  # type: ignore[method-assign]
    try:
        events = await broker.publish_many("ops.batch", "notify", [note(n) for n in range(50)])
    finally:
        await broker.close()
    assert commits == [50]
    assert [e.offset for e in events] == list(range(50))


async def test_a_channel_of_a_kind_no_longer_installed_is_left_on_disk(tmp_path: Path) -> None:
    store = SqliteLog(tmp_path / "pb.db")
    store.commit([Event(f"{store.epoch}-1", "x.gone", "plugin-kind", 0.0, {}, 1, 0)], keep=10)
    store.close()
    broker = await started(f"sqlite:///{tmp_path}/pb.db")
    try:
        assert await broker.kind_of("x.gone") is None
        later = await broker.publish("ops.deploys", "notify", note(1))
    finally:
        await broker.close()
    assert later.seq == 2


async def test_state_survives_a_restart_and_commits_with_its_event(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/pb.db"
    broker = await started(url, history=100)
    await broker.publish("ops.state", "notify", note(1), {"logtail:f": "offset 10"})
    await broker.close()
    broker = await started(url, history=100)
    try:
        assert await broker.load_state("logtail:") == {"logtail:f": "offset 10"}
    finally:
        await broker.close()


def test_a_failed_commit_stores_neither_the_events_nor_the_state(tmp_path: Path) -> None:
    store = SqliteLog(tmp_path / "pb.db")
    try:
        event = Event("e-1", "ops.state", "notify", 1.0, note(1), 1, 0)
        store.commit([event], 100, {"logtail:f": "1"})
        with pytest.raises(sqlite3.IntegrityError):  # the same seq again: the batch fails
            store.commit([event], 100, {"logtail:f": "2"})
        assert store.load_state("logtail:") == {"logtail:f": "1"}
        assert store.last_seq == 1
    finally:
        store.close()
