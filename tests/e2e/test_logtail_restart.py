"""logtail in a real server killed and restarted (issue 14.2): lines written while down, once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.crash_loop import Node, history
from tests.sources.conftest import LogWriter
from tests.support.waiting import answer


async def lines_of(node: Node, channel: str, count: int = 1, last: str | None = None) -> list[str]:
    """The channel's lines once there are ``count`` and ``last`` among them (fails after 30 s)."""

    async def lines() -> list[str]:
        return [event["data"]["line"] for event in await history(node, channel)]

    def done(got: list[str]) -> bool:
        return len(got) >= count and (last is None or last in got)

    return await answer(lines, done, f"{count} lines and {last!r} in {channel}", every_s=0.05)


@pytest.mark.slow
async def test_a_sigkilled_server_delivers_the_lines_written_while_it_was_down(
    tmp_path: Path,
) -> None:
    (tmp_path / "log").mkdir()
    writer = LogWriter(tmp_path / "log" / "app.log")
    writer.lines(150)
    source = {"type": "logtail", "path": str(tmp_path / "log" / "app.log"), "lines": 100}
    config = {"broker": {"url": f"sqlite:///{tmp_path}/state/pb.db"}, "sources": [source]}
    node = Node(tmp_path, config)
    await node.start()
    try:
        await lines_of(node, "log.app", 100)
        writer.lines(5)
        await lines_of(node, "log.app", 105)
        node.kill()
        writer.lines(7)  # while down
        await node.start()
        lines = await lines_of(node, "log.app", last=writer.line("last line"))  # repeats: before it
    finally:
        log = node.server.log()
        node.stop()
        writer.close()
    assert lines == writer.written[50:]
    assert "Traceback" not in log, log
