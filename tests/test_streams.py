"""The stream loop, driven without a server: a real broker and renderer, a fake socket.

``FakeSocket`` stands in for the direct socket of :mod:`app.web.asgi`: it
records what the stream writes and wakes the test on each write.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from app.broker.base import Start
from app.broker.memory import MemoryBroker
from app.events import Kind, KindRegistry, KindView
from app.filters import EventFilter, compile_user_regex
from app.render import Renderer, create_environment
from app.streams import EventStream, StreamRegistry, StreamRequest, StreamTimings
from tests.support.sse_parser import SSEParser

WAIT_S = 10.0


class BoomPayload(msgspec.Struct, forbid_unknown_fields=True):
    text: str
    divisor: int = 1


BOOM_PARTIAL = (
    '{%- if mode == "event" -%}<li>{{ event.data.text }} {{ 60 // event.data.divisor }}</li>'
    '{%- else -%}<ol hx-swap-oob="outerHTML">{% for e in events %}<li>{{ e.data.text }}'
    " {{ 60 // e.data.divisor }}</li>{% endfor %}</ol>{%- endif -%}"
)


class FakeSocket:
    """A direct socket that takes every write; ``written`` is everything it was given."""

    def __init__(self) -> None:
        self.written = b""
        self.closed = False
        self.aborted = False
        self.changed = asyncio.Event()

    def write_now(self, body: bytes) -> bool:
        if self.closed:
            raise ConnectionError("closed")
        self.written += body
        self.changed.set()
        return True

    async def drain(self) -> None:
        return None

    def abort(self) -> None:
        self.aborted = self.closed = True
        self.changed.set()


class SendRecorder:
    """An ASGI ``send`` (the path without a direct socket) recording the body."""

    def __init__(self) -> None:
        self.written = b""
        self.changed = asyncio.Event()

    async def __call__(self, message: dict[str, Any]) -> None:
        self.written += message.get("body", b"")
        self.changed.set()


async def until(check: Callable[[], bool], changed: asyncio.Event, what: str) -> None:
    """Await ``changed`` until ``check()`` holds (bounded)."""
    try:
        async with asyncio.timeout(WAIT_S):
            while not check():
                changed.clear()
                await changed.wait()
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


@pytest.fixture
def kinds(tmp_path: Path) -> KindRegistry:
    """A kind whose partial (shipped in its own template_dir) divides by a payload field."""
    (tmp_path / "partials").mkdir()
    (tmp_path / "partials" / "_boom.html").write_text(BOOM_PARTIAL)
    view = KindView(template="partials/_boom.html", template_dir=tmp_path)
    registry = KindRegistry()
    registry.register(Kind("boom", BoomPayload, view, text=lambda data: str(data["text"])))
    return registry


@pytest.fixture
def renderer(kinds: KindRegistry) -> Renderer:
    return Renderer(create_environment(kinds), kinds)


@pytest.fixture
async def registry() -> AsyncIterator[StreamRegistry]:
    streams = StreamRegistry(StreamTimings(heartbeat_s=60.0, write_timeout_s=60.0, retry_ms=1000))
    yield streams
    await streams.close_all(grace_s=WAIT_S)


def request(kinds: KindRegistry, format: str, q: str | None = None) -> StreamRequest:
    pattern = compile_user_regex(q) if q is not None else None
    return StreamRequest(("boom.room",), format, EventFilter(kinds, pattern), Start(), "test")


def data_of(written: bytes, channel: str = "boom.room") -> list[str]:
    return [event.data for event in SSEParser().feed(written) if event.event == channel]


async def test_a_partial_that_raises_for_one_payload_breaks_neither_publish_nor_any_stream(
    kinds: KindRegistry,
    renderer: Renderer,
    registry: StreamRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = MemoryBroker(kinds, history_size=100, max_lag=100)
    await broker.declare("boom.room", "boom")
    sockets = {fmt: FakeSocket() for fmt in ("json", "html")}
    asgi_html, filtered_html = SendRecorder(), FakeSocket()
    streams = [
        (EventStream(request(kinds, "json"), broker, renderer, registry), sockets["json"]),
        (EventStream(request(kinds, "html"), broker, renderer, registry), sockets["html"]),
        (EventStream(request(kinds, "html", q="o"), broker, renderer, registry), filtered_html),
    ]
    tasks = [asyncio.create_task(stream.run(SendRecorder(), sock)) for stream, sock in streams]
    plain = EventStream(request(kinds, "html"), broker, renderer, registry)
    tasks.append(asyncio.create_task(plain.run(asgi_html)))
    readers = [*sockets.values(), filtered_html, asgi_html]
    for reader in readers:  # each stream has written its start and is parked
        await until(lambda r=reader: b"retry:" in r.written, reader.changed, "the stream to start")
    await until(lambda: len(registry.streams) == 4, sockets["json"].changed, "4 streams")

    with caplog.at_level(logging.ERROR, logger="pulseboard.stream"):
        for divisor in (1, 0, 0, 2):  # 60 // 0 raises in the partial
            await broker.publish("boom.room", "boom", {"text": "ok", "divisor": divisor})

    for reader in readers:
        await until(lambda r=reader: len(data_of(r.written)) == 4, reader.changed, "4 events")
    jsons = [json.loads(body) for body in data_of(sockets["json"].written)]
    assert [body["data"]["divisor"] for body in jsons] == [1, 0, 0, 2]
    for reader in (sockets["html"], asgi_html, filtered_html):
        rows = data_of(reader.written)
        assert "60</li>" in rows[0] and "30</li>" in rows[3], rows
        assert all("render-failed" in row and "&#34;divisor&#34;:0" in row for row in rows[1:3])
    failures = [r for r in caplog.records if "render failed" in r.getMessage()]
    assert len(failures) == 1, "logged once per kind"
    assert registry.stats.render_failures["boom"] == 4  # 2 shared frames, 2 highlighted ones
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_fresh_html_connect_after_a_failing_event_gets_its_snapshot(
    kinds: KindRegistry, renderer: Renderer, registry: StreamRegistry
) -> None:
    broker = MemoryBroker(kinds, history_size=100, max_lag=100)
    for divisor in (3, 0):
        await broker.publish("boom.room", "boom", {"text": "ok", "divisor": divisor})
    sock = FakeSocket()
    fresh = StreamRequest(("boom.room",), "html", EventFilter(kinds), Start(snapshot=True), "test")
    task = asyncio.create_task(
        EventStream(fresh, broker, renderer, registry).run(SendRecorder(), sock)
    )
    await until(lambda: bool(data_of(sock.written)), sock.changed, "the snapshot")
    snapshot = data_of(sock.written)[0]
    assert "20</li>" in snapshot and "render-failed" in snapshot
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


class FullSocket(FakeSocket):
    """A socket past high water while ``full``; ``drain`` waits until the test ``release``s it."""

    def __init__(self) -> None:
        super().__init__()
        self.full = False
        self.draining = asyncio.Event()
        self._released = asyncio.Event()

    def write_now(self, body: bytes) -> bool:
        super().write_now(body)
        return not self.full

    async def drain(self) -> None:
        self.draining.set()
        await self._released.wait()

    def release(self) -> None:
        self.full = False
        self._released.set()


async def started(
    kinds: KindRegistry, broker: MemoryBroker, registry: StreamRegistry, sock: FakeSocket
) -> tuple[EventStream, asyncio.Task[None]]:
    """A json stream on ``sock`` that has written its start and is parked."""
    stream = EventStream(
        request(kinds, "json"), broker, Renderer(create_environment(kinds), kinds), registry
    )
    task = asyncio.create_task(stream.run(SendRecorder(), sock))
    await until(lambda: b"retry:" in sock.written, sock.changed, "the stream to start")
    return stream, task


async def test_a_stream_past_high_water_hands_over_to_its_task_and_loses_nothing(
    kinds: KindRegistry, registry: StreamRegistry
) -> None:
    broker = MemoryBroker(kinds, history_size=100, max_lag=100)
    sock = FullSocket()
    stream, task = await started(kinds, broker, registry, sock)
    sock.full = True
    for n in range(3):  # handed over directly, written in one go, which passes high water
        await broker.publish("boom.room", "boom", {"text": f"t{n}"})
    async with asyncio.timeout(WAIT_S):
        await sock.draining.wait()
    await broker.publish("boom.room", "boom", {"text": "t3"})  # wakes the task: not parked
    sock.release()
    await until(lambda: len(data_of(sock.written)) == 4, sock.changed, "4 events")
    assert [json.loads(body)["data"]["text"] for body in data_of(sock.written)] == [
        "t0",
        "t1",
        "t2",
        "t3",
    ]
    assert stream.cut_reason is None
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_stream_that_falls_past_max_lag_while_draining_is_cut(
    kinds: KindRegistry, registry: StreamRegistry
) -> None:
    broker = MemoryBroker(kinds, history_size=100, max_lag=3)
    sock = FullSocket()
    stream, task = await started(kinds, broker, registry, sock)
    sock.full = True
    await broker.publish("boom.room", "boom", {"text": "first"})
    async with asyncio.timeout(WAIT_S):
        await sock.draining.wait()
    for n in range(10):
        await broker.publish("boom.room", "boom", {"text": f"t{n}"})
    sock.release()
    async with asyncio.timeout(WAIT_S):
        await task
    assert stream.cut_reason == "lagging" and sock.aborted
    assert registry.stats.cuts == {"lagging": 1}
