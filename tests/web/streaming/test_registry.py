"""The sweeper's pace: coarse for JSON streams, every quarter second once an html stream is open."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from app.web.streaming.registry import STATUS_EVERY_S, StreamRegistry, StreamTimings

WAIT_S = 10.0


class StubStream:
    """What the registry asks of a stream: its client, whether it sends status, its sweep."""

    def __init__(self, sends_status: bool) -> None:
        self.request = SimpleNamespace(client="test")
        self.format = SimpleNamespace(sends_status=sends_status)
        self.swept = asyncio.Event()

    def sweep(self, now: float, timings: StreamTimings) -> None:
        self.swept.set()

    def end(self) -> None:
        """Nothing to end."""


def registry(heartbeat_s: float, write_timeout_s: float) -> StreamRegistry:
    return StreamRegistry(StreamTimings(heartbeat_s, write_timeout_s, retry_ms=1000))


async def test_json_streams_are_swept_at_a_quarter_of_the_shortest_timer() -> None:
    streams = registry(heartbeat_s=15.0, write_timeout_s=10.0)
    json_stream: Any = StubStream(sends_status=False)
    streams.add(json_stream)
    assert streams.sweep_interval_s == 2.5


async def test_an_html_stream_brings_the_status_second_in_until_it_leaves() -> None:
    streams = registry(heartbeat_s=15.0, write_timeout_s=10.0)
    html: Any = StubStream(sends_status=True)
    streams.add(html)
    assert streams.sweep_interval_s == STATUS_EVERY_S / 4
    streams.remove(html)
    assert streams.sweep_interval_s == 2.5


async def test_the_first_html_stream_wakes_a_sweeper_in_a_long_wait() -> None:
    streams = registry(heartbeat_s=600.0, write_timeout_s=600.0)  # a 150-s wait
    streams.start()
    try:
        await asyncio.sleep(0)  # the sweeper is in its wait
        html: Any = StubStream(sends_status=True)
        streams.add(html)
        await asyncio.wait_for(html.swept.wait(), WAIT_S)
    finally:
        await streams.stop()
