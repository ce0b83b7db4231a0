"""The logtail source against the real ``logrotate`` binary, with a writer appending all along."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import require_binary
from tests.support.waiting import until

LOGROTATE = "/usr/sbin/logrotate"


async def logrotate(directory: Path, path: Path, *directives: str) -> None:
    """Force one rotation of ``path`` by the real logrotate (config and state in ``directory``)."""
    binary = require_binary(LOGROTATE, "logrotate rotates the files in these tests")
    config = directory / "logrotate.conf"
    body = "\n".join(f"    {line}" for line in ("rotate 5", "nocompress", *directives))
    config.write_text(f"{path} {{\n{body}\n}}\n")
    process = await asyncio.create_subprocess_exec(
        binary,
        "-f",
        "-s",
        str(directory / "logrotate.state"),
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, output.decode()


def lines_of(*paths: Path) -> list[str]:
    """The lines of the files, in order (what is on disk after the rotation)."""
    return [line for path in paths for line in path.read_text().splitlines()]


async def test_copytruncate_by_logrotate_while_appending(
    log_dir, rotate_dir, tail, make_writer, continuous_writer
):
    path = log_dir / "app.log"
    writer = make_writer(path)
    async with tail(path) as got:
        writer.lines(200)
        background = continuous_writer(writer, interval_s=0.001)
        await got.wait_for(len(writer.written) + 100)  # following the live writer
        await logrotate(rotate_dir, path, "copytruncate")
        await got.wait_for(len(writer.written) + 100)  # and after the rotation
        background.stop()
        last = writer.line("last line")
        await got.wait_for_line(last)
        await got.settle()
    delivered = got.lines()
    on_disk = lines_of(path.with_name("app.log.1"), path)
    # logrotate's own window: a line written between its copy and its truncate is in
    # neither file; we deliver it only if we had read it before the truncate.
    lost_by_logrotate = [line for line in writer.written if line not in set(on_disk)]
    assert len(delivered) == len(set(delivered)), "a line was delivered twice"
    assert delivered == [line for line in writer.written if line in set(delivered)], "order"
    missing = [line for line in writer.written if line not in set(delivered)]
    assert set(missing) <= set(lost_by_logrotate), f"lines lost by the tailer: {missing[:5]}"
    assert len(writer.written) > 300
    saved = len(lost_by_logrotate) - len(missing)
    print(f"copytruncate: {len(writer.written)} lines written, {len(lost_by_logrotate)} in no file")
    print(f"after the rotation (logrotate's window), {saved} of them delivered all the same")


@pytest.mark.slow
async def test_copytruncate_by_logrotate_while_the_tailer_lags(
    log_dir, rotate_dir, tail, make_writer
):
    path = log_dir / "app.log"
    writer = make_writer(path)
    async with tail(path, publish_delay_s=0.0002) as got:
        for n in range(4000):  # ~800 KiB, more than one read
            writer.line(f"lag {n:05d} " + "z" * 190)
        await got.wait_for(1)
        await logrotate(rotate_dir, path, "copytruncate")
        assert len(got.lines()) < 2000, "the tailer caught up too early to test recovery"
        writer.lines(100)
        await got.wait_for(len(writer.written), timeout_s=30)
        await got.settle()
    assert got.lines() == writer.written
    assert lines_of(path.with_name("app.log.1"), path) == writer.written


async def test_rename_rotation_by_logrotate_with_create(
    log_dir, rotate_dir, tail, make_writer, continuous_writer
):
    path = log_dir / "app.log"
    writer = make_writer(path)
    async with tail(path) as got:
        writer.lines(200)
        background = continuous_writer(writer, interval_s=0.001)
        await got.wait_for(len(writer.written) + 100)  # following the live writer
        await logrotate(rotate_dir, path, "create")
        rotated_at = len(writer.written)  # the daemon still writes to app.log.1 ...
        await until(lambda: len(writer.written) >= rotated_at + 100, "100 lines to app.log.1")
        writer.reopen()  # ... until its postrotate signal makes it reopen app.log
        await got.wait_for(len(writer.written) + 100)  # and to the new app.log
        background.stop()
        last = writer.line("last line")
        await got.wait_for_line(last)
        await got.settle()
    assert got.lines() == writer.written
    assert lines_of(path.with_name("app.log.1"), path) == writer.written
