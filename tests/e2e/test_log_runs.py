"""A batch of log lines reaches a ``format=html`` stream as fewer SSE messages, every row once.

Over a real socket to a real server: the lines the logtail reads in one chunk
(only a log channel's source publishes there: no NDJSON POST to it) are handed to
the parked stream before its loop turns, and the write joins each run of one
channel's rows into one message (app/frames.py): one swap in the browser instead
of one per line (issue 15, point 8).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import httpx

from tests.e2e.conftest import ServerFactory
from tests.support.sse_client import SSEStream

LINES = 100
CHANNEL = "log.batch"


async def test_a_batch_of_lines_arrives_as_fewer_messages_with_every_row_once(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    log = tmp_path / "batch.log"
    log.write_text("")
    server = start_server(
        {
            "server": {"heartbeat": 30.0},
            "sources": [{"type": "logtail", "channel": CHANNEL, "path": str(log), "lines": 0}],
        }
    )
    url = f"{server.url}/events?channel={CHANNEL}&format=html"
    async with SSEStream(url) as stream:
        await stream.wait_for(lambda: any(e.event == CHANNEL for e in stream.parser.events))
        opened = len(stream.parser.events)  # the status fragment and the channel's snapshot
        with log.open("a") as file:  # one write: the logtail reads it as one chunk
            file.write("".join(f"INFO batch line {n:03d}\n" for n in range(LINES)))

        def rows() -> Counter[str]:
            found: Counter[str] = Counter()
            for event in stream.parser.events[opened:]:
                if event.event == CHANNEL:
                    found.update(re.findall(r'<li id="line-([^"]+)"', event.data))
            return found

        await stream.wait_for(lambda: sum(rows().values()) >= LINES, within=30)
        sent = [e for e in stream.parser.events[opened:] if e.event == CHANNEL]
        async with httpx.AsyncClient(timeout=30) as client:
            history = await client.get(f"{server.url}/api/channels/{CHANNEL}/events?limit=1000")
        ids = [event["id"] for event in history.json()["events"]]
    assert len(ids) == LINES
    assert rows() == Counter(ids), "every row once, none twice"
    assert len(sent) < LINES, f"{len(sent)} messages for {LINES} lines"
    assert sent[-1].id == ids[-1]  # a reconnect resumes after the last row
    for message in sent:
        assert message.data.count('hx-swap-oob="delete:') == 1
        assert message.data.count('<template class="cap-end">') == 1
