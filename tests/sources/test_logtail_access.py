"""logtail reads only the files it may: no symlink out of its directories, no /proc, no FIFO.

Regression tests for issue 12 point 3: in a directory tailed as ``*.log``,
``shadow.log -> /etc/shadow`` was published line by line and
``environ.log -> /proc/self/environ`` published the process environment.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from app.sources.logtail.access import NOT_REGULAR, OUTSIDE, SYSTEM, refusal
from tests.support.waiting import until

SECRET = "root:SECRET-HASH:19000:0:99999:7:::"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file outside the tailed directory, holding a secret line."""
    directory = tmp_path / "etc"
    directory.mkdir()
    secret = directory / "shadow"
    secret.write_text(f"{SECRET}\n")
    return secret


def refused_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "not reading" in r.getMessage()]


async def test_symlinks_out_of_the_directory_are_refused_and_nothing_is_published(
    log_dir, outside, tail, make_writer, caplog
):
    (log_dir / "shadow.log").symlink_to(outside)
    (log_dir / "environ.log").symlink_to("/proc/self/environ")
    writer = make_writer(log_dir / "app.log")
    writer.lines(3)
    caplog.set_level(logging.WARNING, "pulseboard.sources.logtail")
    async with tail(log_dir / "*.log", flush_timeout=1.0) as got:
        await got.wait_for(3)
        writer.lines(2)
        await got.wait_for(5)
        # past the flush timeout (environ has no newline), and a few ticks that look again
        await got.settle(1.5)
    assert got.lines() == writer.written
    assert {data["file"] for _channel, _kind, data in got.events} == {"app.log"}
    assert got.stats.refused == {OUTSIDE: 1, SYSTEM: 1, NOT_REGULAR: 0}
    assert len(refused_warnings(caplog)) == 2, refused_warnings(caplog)


async def test_a_symlink_into_allowed_dirs_is_followed(tmp_path, tail, make_writer):
    containers, pod = tmp_path / "log" / "containers", tmp_path / "log" / "pods" / "web-1"
    containers.mkdir(parents=True)
    pod.mkdir(parents=True)
    writer = make_writer(pod / "0.log")
    (containers / "web-1.log").symlink_to(pod / "0.log")
    async with tail(containers / "*.log", allowed_dirs=[str(tmp_path / "log")]) as got:
        writer.lines(3)
        await got.wait_for(3)
    assert got.lines() == writer.written
    assert got.stats.refused == {OUTSIDE: 0, SYSTEM: 0, NOT_REGULAR: 0}


async def test_a_symlink_within_the_directory_is_followed(log_dir, tail, make_writer):
    writer = make_writer(log_dir / "app-2026.log.current")
    (log_dir / "app.log").symlink_to("app-2026.log.current")
    async with tail(log_dir / "*.log") as got:
        writer.lines(3)
        await got.wait_for(3)
    assert got.lines() == writer.written


async def test_a_fifo_in_the_directory_is_refused_and_does_not_block(log_dir, tail, make_writer):
    os.mkfifo(log_dir / "pipe.log")
    writer = make_writer(log_dir / "app.log")
    async with tail(log_dir / "*.log") as got:
        writer.lines(3)
        await got.wait_for(3)
        await until(lambda: got.stats.refused[NOT_REGULAR] == 1, "the FIFO refused")
    assert got.lines() == writer.written


async def test_a_path_named_exactly_may_be_a_symlink_to_anywhere(
    log_dir, tmp_path, tail, make_writer
):
    elsewhere = tmp_path / "srv"
    elsewhere.mkdir()
    writer = make_writer(elsewhere / "app.log")
    (log_dir / "app.log").symlink_to(elsewhere / "app.log")
    async with tail(log_dir / "app.log") as got:
        writer.lines(3)
        await got.wait_for(3)
    assert got.lines() == writer.written


@pytest.mark.parametrize("named", ["/proc/self/environ", "link"])
async def test_proc_is_never_read_even_when_named_exactly(log_dir, tail, named):
    path = named if named.startswith("/") else log_dir / "environ.log"
    if named == "link":
        (log_dir / "environ.log").symlink_to("/proc/self/environ")
    async with tail(path, flush_timeout=1.0) as got:
        await until(lambda: got.stats.refused[SYSTEM] == 1, "/proc refused")
        await got.settle(1.5)  # past the flush timeout: environ has no newline
    assert got.lines() == []


async def test_a_fifo_named_exactly_is_refused(log_dir, tail):
    os.mkfifo(log_dir / "pipe.log")
    async with tail(log_dir / "pipe.log") as got:
        await until(lambda: got.stats.refused[NOT_REGULAR] == 1, "the FIFO refused")
    assert got.lines() == []


async def test_a_rotation_that_swaps_the_file_for_a_symlink_is_refused_on_reopen(
    log_dir, outside, tail, make_writer
):
    path = log_dir / "app.log"
    writer = make_writer(path)
    async with tail(log_dir / "*.log") as got:
        writer.lines(3)
        await got.wait_for(3)
        os.rename(path, log_dir / "app.log.1")
        path.symlink_to(outside)
        writer.lines(2)  # the daemon still writes to its old file, now app.log.1
        await got.wait_for(5)
        await until(lambda: got.stats.refused[OUTSIDE] == 1, "the symlink refused")
        await got.settle(0.6)
    assert got.lines() == writer.written
    assert SECRET not in got.lines()


@pytest.mark.parametrize(
    ("real", "mode", "allowed", "reason"),
    [
        ("/var/log/pods/a/0.log", 0o100644, ["/var/log"], None),
        ("/var/log/pods/a/0.log", 0o100644, ["/var/log/containers"], OUTSIDE),
        ("/var/logs/a.log", 0o100644, ["/var/log"], OUTSIDE),
        ("/etc/shadow", 0o100644, None, None),
        ("/proc/self/environ", 0o100444, None, SYSTEM),
        ("/sys/kernel/notes", 0o100444, ["/"], SYSTEM),
        ("/dev", 0o040755, None, SYSTEM),
        ("/var/log/pipe.log", 0o010644, ["/var/log"], NOT_REGULAR),
        ("/var/log/socket.log", 0o140755, ["/var/log"], NOT_REGULAR),
        ("/var/log/sda.log", 0o060660, ["/var/log"], NOT_REGULAR),
    ],
)
def test_refusal(real, mode, allowed, reason):
    assert refusal(real, mode, allowed) == reason
