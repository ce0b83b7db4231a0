"""The logtail source against real files: every line exactly once, in order, whatever happens."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from app.sources.base import SourceConfigError, configure_sources
from app.sources.logtail.lines import CUT_MARKER
from app.sources.logtail.source import LOGTAIL, channel_for
from tests.support.waiting import until

MIB = 1024 * 1024


def rotate_by_rename(path: Path, suffix: str = ".1") -> Path:
    """What logrotate does without copytruncate: rename the file away (no new file yet)."""
    rotated = path.with_name(path.name + suffix)
    os.rename(path, rotated)
    return rotated


async def test_files_present_at_start_begin_with_their_last_lines(log_dir, tail, make_writer):
    writer = make_writer(log_dir / "app.log")
    writer.lines(150)
    async with tail(log_dir / "app.log", lines=100) as got:
        await got.wait_for(100)
        writer.lines(5)
        await got.wait_for(105)
        await got.settle(0.3)
    assert got.lines() == writer.written[50:]
    assert {channel for channel, _kind, _data in got.events} == {"log.app"}


async def test_backfill_counts_an_unterminated_last_line_and_holds_it(log_dir, tail, make_writer):
    writer = make_writer(log_dir / "app.log")
    writer.lines(3)
    writer.write(b"half")
    async with tail(log_dir / "app.log", lines=2) as got:
        await got.wait_for(1)
        writer.write(b" done\n")
        await got.wait_for(2)
        await got.settle(0.3)
    assert got.lines() == ["line 000002", "half done"]


async def test_rename_rotation_while_the_old_writer_still_appends(log_dir, tail, make_writer):
    path = log_dir / "app.log"
    writer = make_writer(path)
    async with tail(path) as got:
        writer.lines(50)
        rotate_by_rename(path)
        path.touch()
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:  # the daemon has not reopened yet
            writer.lines(5)
            await asyncio.sleep(0.02)  # the pace of the daemon's writes to the renamed file
        writer.reopen()
        writer.lines(50)
        await got.wait_for(len(writer.written))
        await got.settle()
    assert got.lines() == writer.written


async def test_two_rotations_within_500_ms(log_dir, tail, make_writer):
    path = log_dir / "app.log"
    writer = make_writer(path)
    async with tail(path) as got:
        writer.lines(30)
        rotate_by_rename(path, ".2")
        writer.reopen()
        writer.lines(30)
        await asyncio.sleep(0.2)  # the scenario: the second rotation 200 ms after the first
        rotate_by_rename(path, ".1")
        writer.lines(10)  # still the old handle, now app.log.1
        writer.reopen()
        writer.lines(30)
        await got.wait_for(len(writer.written))
        await got.settle()
    assert got.lines() == writer.written


async def test_truncate_and_refill(log_dir, tail, make_writer):
    path = log_dir / "app.log"
    writer = make_writer(path, prefix="before")
    async with tail(path) as got:
        writer.lines(50)
        await got.wait_for(50)
        os.truncate(path, 0)
        writer.prefix = "after"
        writer.lines(80)  # refilled past where we were before the tailer looked
        await got.wait_for(130)
        await got.settle()
    assert got.lines() == writer.written


async def test_truncate_then_slow_refill(log_dir, tail, make_writer):
    path = log_dir / "app.log"
    writer = make_writer(path, prefix="before")
    async with tail(path) as got:
        writer.lines(50)
        await got.wait_for(50)
        os.truncate(path, 0)
        await until(lambda: got.stats.rotations["truncate"] == 1, "the truncation seen")
        writer.prefix = "after"
        writer.lines(10)
        await got.wait_for(60)
        await got.settle()
    assert got.lines() == writer.written


@pytest.mark.slow
async def test_delete_then_recreate_after_2_s(log_dir, tail, make_writer):
    path = log_dir / "app.log"
    first = make_writer(path, prefix="first")
    async with tail(path) as got:
        first.lines(20)
        await got.wait_for(20)
        first.close()
        path.unlink()
        await asyncio.sleep(2)  # the scenario: the path stays missing 2 s (the tailer looks on)
        second = make_writer(path, prefix="second")
        second.lines(20)
        await got.wait_for(40)
        await got.settle()
    assert got.lines() == first.written + second.written


async def test_file_missing_at_start_is_read_from_its_beginning(log_dir, tail, make_writer):
    path = log_dir / "app.log"
    async with tail(path) as got:  # watching: the file appears after the tailer started
        writer = make_writer(path)
        writer.lines(200)
        await got.wait_for(200)
        await got.settle()
    assert got.lines() == writer.written


async def test_directory_missing_at_start(tmp_path, tail, make_writer):
    path = tmp_path / "later" / "app.log"
    async with tail(path) as got:
        path.parent.mkdir()
        writer = make_writer(path)
        writer.lines(20)
        await got.wait_for(20)
        await got.settle()
    assert got.lines() == writer.written


async def test_glob_picks_up_a_new_file_on_its_own_channel(log_dir, tail, make_writer):
    first = make_writer(log_dir / "api.log", prefix="api")
    first.lines(3)
    async with tail(log_dir / "*.log") as got:
        await got.wait_for(3)
        (log_dir / "notes.txt").write_text("not a log\n")
        second = make_writer(log_dir / "worker.log", prefix="worker")
        second.lines(20)
        first.lines(5)
        await got.wait_for(28)
        await got.settle()
    assert got.lines("api.log") == first.written
    assert got.lines("worker.log") == second.written
    channels = {data["file"]: channel for channel, _kind, data in got.events}
    assert channels == {"api.log": "log.api", "worker.log": "log.worker"}


async def test_configured_channel_is_used_for_every_file(log_dir, tail, make_writer):
    writer = make_writer(log_dir / "a.log")
    async with tail(log_dir / "*.log", channel="log.all") as got:
        writer.lines(2)
        await got.wait_for(2)
    assert {channel for channel, _kind, _data in got.events} == {"log.all"}


async def read_everything(got, path: Path) -> None:
    """Wait until the tailer has read ``path`` to its current end."""
    size = await asyncio.to_thread(os.path.getsize, path)
    await until(lambda: got.stats.bytes_read >= size, f"{path.name} read to byte {size}")


async def test_a_line_written_in_two_halves_1_s_apart_is_one_line(log_dir, tail, make_writer):
    writer = make_writer(log_dir / "app.log")
    async with tail(log_dir / "app.log") as got:
        writer.write(b"first half")
        await read_everything(got, log_dir / "app.log")
        await asyncio.sleep(1)  # the scenario: the second half comes a second later
        assert got.lines() == []
        writer.write(b", second half\n")
        await got.wait_for(1)
        await got.settle(0.3)
    assert got.lines() == ["first half, second half"]


async def test_a_partial_line_is_published_after_the_flush_timeout(log_dir, tail, make_writer):
    writer = make_writer(log_dir / "app.log")
    async with tail(log_dir / "app.log", flush_timeout=1.0) as got:
        writer.write(b"no newline yet")
        started = time.monotonic()
        await got.wait_for(1)
        waited = time.monotonic() - started
        writer.lines(1)
        await got.wait_for(2)
    assert got.lines() == ["no newline yet", "line 000000"]
    assert waited >= 0.9  # never before the flush timeout (after it: as soon as the loop can)


async def test_a_10_mib_line_is_cut_with_a_marker_and_following_goes_on(log_dir, tail, make_writer):
    writer = make_writer(log_dir / "app.log")
    async with tail(log_dir / "app.log") as got:
        writer.write(b"x" * (10 * MIB))
        writer.write(b"\n")
        writer.lines(3)
        await got.wait_for(4, timeout_s=20)
        await got.settle(0.3)
    huge, *rest = got.lines()
    assert huge == "x" * 65536 + CUT_MARKER.format(cut=10 * MIB - 65536)
    assert rest == writer.written


async def test_invalid_utf8_and_split_multibyte_characters(log_dir, tail, make_writer):
    writer = make_writer(log_dir / "app.log")
    async with tail(log_dir / "app.log") as got:
        writer.write(b"bad \xff\xfe bytes\n")
        writer.write("café ".encode()[:-2])  # "caf" + the first byte of "é"
        await got.wait_for(1)
        await read_everything(got, log_dir / "app.log")  # the cut character, on its own
        writer.write("café ".encode()[-2:] + "€ 𝄞\n".encode()[:2])
        await read_everything(got, log_dir / "app.log")
        writer.write("€ 𝄞\n".encode()[2:])
        await got.wait_for(2)
        await got.settle(0.3)
    assert got.lines() == ["bad \ufffd\ufffd bytes", "café € 𝄞"]


async def test_10000_lines_written_in_one_burst(log_dir, tail, make_writer):
    writer = make_writer(log_dir / "app.log")
    async with tail(log_dir / "app.log") as got:
        lines = [f"burst {n:05d} " + "y" * (n % 97) for n in range(10_000)]
        writer.write("".join(f"{line}\n" for line in lines).encode())
        await got.wait_for(10_000, timeout_s=30)
        await got.settle(0.3)
    assert got.lines() == lines


async def test_crlf_ansi_and_levels(log_dir, tail, make_writer):
    writer = make_writer(log_dir / "app.log")
    async with tail(log_dir / "app.log") as got:
        writer.write(b"\x1b[31mERROR\x1b[0m disk full\r\n")
        writer.write(b'{"level": "warning", "msg": "slow"}\r\n')
        writer.write(b"ts=1 level=debug msg=ok\n")
        writer.write(b"nothing to see\n")
        await got.wait_for(4)
    assert [(d["line"], d["level"]) for _c, _k, d in got.events] == [
        ("ERROR disk full", "error"),
        ('{"level": "warning", "msg": "slow"}', "warn"),
        ("ts=1 level=debug msg=ok", "debug"),
        ("nothing to see", None),
    ]
    assert all(d["file"] == "app.log" for _c, _k, d in got.events)


async def test_polling_mode_follows_appends(log_dir, tail, make_writer):
    path = log_dir / "app.log"
    writer = make_writer(path)
    async with tail(path, poll=True) as got:
        writer.lines(10)
        rotate_by_rename(path)
        writer.reopen()
        writer.lines(10)
        await got.wait_for(20)
        await got.settle()
    assert got.lines() == writer.written


async def test_cancelling_the_source_propagates_cancelled_error(log_dir):
    source = LOGTAIL.create(_config(str(log_dir / "app.log")))

    async def publish(channel: str, kind: str, data: dict[str, Any], state: Any = None) -> Any:
        raise AssertionError("nothing to publish")

    task = asyncio.create_task(source.run(publish, asyncio.Event()))
    await asyncio.wait_for(source.ready.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"flush_timeout": 0.5}, "sources[0].flush_timeout"),
        ({"max_line_bytes": 10}, "sources[0].max_line_bytes"),
        ({"lines": -1}, "sources[0].lines"),
        ({"channel": "Not A Channel"}, "channel"),
        ({"path": "/var/*/app.log"}, "path"),
        ({"follow": True}, "follow"),
        ({"allowed_dirs": ["/proc/1"]}, "sources[0].allowed_dirs"),
        ({"allowed_dirs": "/var/log"}, "sources[0].allowed_dirs"),
    ],
)
def test_bad_config_is_refused_naming_the_key(entry, message):
    with pytest.raises(SourceConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        configure_sources([{"type": "logtail", "path": "/tmp/a.log", **entry}], _types())


def test_channels_known_at_start(log_dir):
    for name in ("api.log", "Worker Two.log", ".hidden.log"):
        (log_dir / name).touch()
    (log_dir / "environ.log").symlink_to("/proc/self/environ")  # never read: no panel
    glob = _config(str(log_dir / "*.log"))
    assert LOGTAIL.channels(glob) == [("log.api", "log"), ("log.worker-two", "log")]
    assert LOGTAIL.channels(_config(str(log_dir / "missing.log"))) == [("log.missing", "log")]
    assert LOGTAIL.channels(_config(str(log_dir / "*.log"), channel="log.x")) == [("log.x", "log")]


@pytest.mark.parametrize(
    ("name", "channel"),
    [
        ("app.log", "log.app"),
        ("nginx.access.log", "log.nginx"),
        ("_x!.log", "log.x"),
        (".log", "log.file"),
    ],
)
def test_channel_for(name, channel):
    assert channel_for(name) == channel


def _types() -> dict[str, Any]:
    return {"logtail": LOGTAIL}


def _config(path: str, **options: Any) -> Any:
    return configure_sources([{"type": "logtail", "path": path, **options}], _types())[0].config


async def test_lines_0_starts_at_the_end(log_dir, tail, make_writer):
    writer = make_writer(log_dir / "app.log")
    writer.lines(10)
    async with tail(log_dir / "app.log", lines=0) as got:
        writer.lines(3)
        await got.wait_for(3)
        await got.settle(0.3)
    assert got.lines() == writer.written[10:]


async def test_lines_appended_one_at_a_time_are_published_one_at_a_time(log_dir, tail, make_writer):
    """Each line is published before the next is written: no waiting for a batch or a poll.

    How fast (file to subscriber, p50/p99) is a figure of bench/logtail_latency.py.
    """
    writer = make_writer(log_dir / "app.log")
    async with tail(log_dir / "app.log") as got:
        for count in range(1, 21):
            writer.line()
            await got.wait_for(count)
        await got.settle(0.3)
    assert got.lines() == writer.written


def numbers(got) -> list[int | None]:
    return [d["lineno"] for _c, _k, d in got.events]


async def test_line_numbers_are_the_files_own_after_a_backfill(log_dir, tail, make_writer):
    writer = make_writer(log_dir / "app.log")
    writer.lines(150)
    async with tail(log_dir / "app.log", lines=100) as got:
        await got.wait_for(100)
        writer.lines(5)
        await got.wait_for(105)
    assert numbers(got) == list(range(51, 156))


async def test_line_numbers_are_unknown_past_the_counting_bound(
    log_dir, tail, make_writer, monkeypatch
):
    monkeypatch.setattr("app.sources.logtail.source.LINE_COUNT_MAX_BYTES", 100)
    writer = make_writer(log_dir / "app.log")
    writer.lines(50)
    async with tail(log_dir / "app.log", lines=2) as got:
        await got.wait_for(2)
        rotate_by_rename(log_dir / "app.log")
        writer.reopen()
        writer.lines(2)
        await got.wait_for(4)
    assert numbers(got) == [None, None, 1, 2]


async def test_a_flushed_partial_line_and_its_rest_share_a_number(log_dir, tail, make_writer):
    writer = make_writer(log_dir / "app.log")
    async with tail(log_dir / "app.log", flush_timeout=1.0) as got:
        writer.write(b"first\nhalf")
        await got.wait_for(2, timeout_s=10)
        writer.write(b" done\nnext\n")
        await got.wait_for(4)
    assert [(d["line"], d["lineno"]) for _c, _k, d in got.events] == [
        ("first", 1),
        ("half", 2),
        (" done", 2),
        ("next", 3),
    ]


async def test_a_line_carries_the_time_it_states(log_dir, tail, make_writer):
    writer = make_writer(log_dir / "dpkg.log")
    async with tail(log_dir / "dpkg.log") as got:
        writer.line("2026-12-01 13:58:04 status installed chromium:amd64 131.0.6778.85-1")
        writer.line("Setting up chromium (131.0.6778.85-1) ...")
        await got.wait_for(2)
    stated = datetime(2026, 12, 1, 13, 58, 4).timestamp()  # no zone in the line: local time
    assert [(d["ts"], d["level"]) for _c, _k, d in got.events] == [(stated, "info"), (None, None)]
