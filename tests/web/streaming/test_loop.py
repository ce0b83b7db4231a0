"""The stream loop, driven without a server: a real broker and renderer, a fake socket.

``FakeSocket`` stands in for the direct socket of :mod:`app.web.asgi`: it
records what the stream writes and wakes the test on each write. The
sweeper's timers are driven by calling ``registry.sweep(now)`` with a clock
reading past the timer, never by waiting for it.
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
from app.web.streaming.loop import EventStream, StreamRequest
from app.web.streaming.registry import STATUS_EVERY_S, StreamRegistry, StreamTimings
from tests.support.sse_parser import SSEParser

WAIT_S = 10.0


class BoomPayload(msgspec.Struct, forbid_unknown_fields=True):
    text: str
    divisor: int = 1


BOOM_PARTIAL = (
    '{%- if mode == "event" -%}<li>{{ mark(event.data.text) }}'
    " {{ 60 // event.data.divisor|default(1) }}</li>"
    '{%- else -%}<ol hx-swap-oob="outerHTML">{% for e in events %}<li>{{ mark(e.data.text) }}'
    " {{ 60 // e.data.divisor|default(1) }}</li>{% endfor %}</ol>{%- endif -%}"
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

    def abort(self) -> None:
        super().abort()
        self._released.set()  # as a real abort does: a drain blocked on it returns

    def release(self) -> None:
        self.full = False
        self._released.set()


async def started(
    kinds: KindRegistry,
    broker: MemoryBroker,
    registry: StreamRegistry,
    sock: FakeSocket,
    stream_request: StreamRequest | None = None,
) -> tuple[EventStream, asyncio.Task[None]]:
    """A stream (json unless told) on ``sock`` that has written its start and is parked."""
    stream = EventStream(
        stream_request or request(kinds, "json"),
        broker,
        Renderer(create_environment(kinds), kinds),
        registry,
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


def later(seconds: float) -> float:
    """A reading of the loop's clock ``seconds`` from now (what the sweeper would see then)."""
    return asyncio.get_running_loop().time() + seconds


async def stopped(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize("fmt", ["json", "html"])
async def test_an_idle_stream_gets_a_heartbeat_and_an_html_one_a_status_fragment(
    kinds: KindRegistry, registry: StreamRegistry, fmt: str
) -> None:
    broker = MemoryBroker(kinds, history_size=100, max_lag=100)
    sock = FakeSocket()
    _stream, task = await started(kinds, broker, registry, sock, request(kinds, fmt))
    statuses = 1 if fmt == "html" else 0
    assert len([e for e in SSEParser().feed(sock.written) if e.event == "_status"]) == statuses

    registry.sweep(later(registry.timings.heartbeat_s / 2))  # not idle long enough yet
    registry.sweep(later(registry.timings.heartbeat_s + 1))
    await until(lambda: b": ping\n" in sock.written, sock.changed, "a heartbeat")
    parser = SSEParser()
    parser.feed(sock.written)
    assert parser.comments == ["ping"]
    after = [e.event for e in SSEParser().feed(sock.written) if e.event == "_status"]
    assert len(after) == 2 * statuses
    await stopped(task)


async def test_an_html_stream_gets_a_status_fragment_every_second_whatever_the_heartbeat(
    kinds: KindRegistry, registry: StreamRegistry
) -> None:
    """The page's indicator goes stale a few seconds after these stop: they cannot wait 60 s."""
    broker = MemoryBroker(kinds, history_size=100, max_lag=100)
    sock = FakeSocket()
    _stream, task = await started(kinds, broker, registry, sock, request(kinds, "html"))

    def statuses() -> int:
        return len([e for e in SSEParser().feed(sock.written) if e.event == "_status"])

    assert statuses() == 1 and registry.timings.heartbeat_s > 10 * STATUS_EVERY_S
    registry.sweep(later(STATUS_EVERY_S + 0.1))
    await until(lambda: statuses() == 2, sock.changed, "a second status fragment")
    assert b": ping" not in sock.written
    await stopped(task)


async def test_a_busy_stream_gets_no_heartbeat(
    kinds: KindRegistry, registry: StreamRegistry
) -> None:
    broker = MemoryBroker(kinds, history_size=100, max_lag=100)
    sock = FakeSocket()
    _stream, task = await started(kinds, broker, registry, sock)
    registry.sweep(later(registry.timings.heartbeat_s - 1))
    await broker.publish("boom.room", "boom", {"text": "busy"})
    await until(lambda: len(data_of(sock.written)) == 1, sock.changed, "the event")
    assert b": ping" not in sock.written
    await stopped(task)


async def test_a_socket_that_takes_no_write_is_cut_by_the_sweeper_as_write_timeout(
    kinds: KindRegistry, registry: StreamRegistry
) -> None:
    broker = MemoryBroker(kinds, history_size=100, max_lag=100)
    sock = FullSocket()
    stream, task = await started(kinds, broker, registry, sock)
    sock.full = True
    await broker.publish("boom.room", "boom", {"text": "stuck"})
    async with asyncio.timeout(WAIT_S):
        await sock.draining.wait()

    registry.sweep(later(registry.timings.write_timeout_s / 2))
    assert stream.cut_reason is None and not sock.aborted
    registry.sweep(later(registry.timings.write_timeout_s + 1))
    async with asyncio.timeout(WAIT_S):
        await task
    assert stream.cut_reason == "write_timeout" and sock.aborted
    assert registry.stats.cuts == {"write_timeout": 1}
    assert not registry.streams
    registry.sweep(later(registry.timings.write_timeout_s + 2))  # a second look counts nothing
    assert registry.stats.cuts == {"write_timeout": 1}


class BlockedSend(SendRecorder):
    """An ASGI ``send`` that never returns once ``blocked`` (Hypercorn's, on a full socket)."""

    def __init__(self) -> None:
        super().__init__()
        self.blocked = False
        self.waiting = asyncio.Event()

    async def __call__(self, message: dict[str, Any]) -> None:
        if self.blocked:
            self.waiting.set()
            await asyncio.Event().wait()
        await super().__call__(message)


async def test_a_blocked_asgi_send_without_a_way_to_the_connection_is_cut_by_cancelling(
    kinds: KindRegistry, renderer: Renderer, registry: StreamRegistry
) -> None:
    broker = MemoryBroker(kinds, history_size=100, max_lag=100)
    send = BlockedSend()
    stream = EventStream(request(kinds, "json"), broker, renderer, registry)
    task = asyncio.create_task(stream.run(send))
    await until(lambda: b"retry:" in send.written, send.changed, "the stream to start")
    send.blocked = True
    await broker.publish("boom.room", "boom", {"text": "stuck"})
    async with asyncio.timeout(WAIT_S):
        await send.waiting.wait()
    registry.sweep(later(registry.timings.write_timeout_s + 1))
    (outcome,) = await asyncio.gather(task, return_exceptions=True)
    assert isinstance(outcome, asyncio.CancelledError)
    assert stream.cut_reason == "write_timeout" and not registry.streams


async def test_a_client_that_hung_up_on_the_direct_socket_ends_at_the_next_sweep(
    kinds: KindRegistry, registry: StreamRegistry
) -> None:
    broker = MemoryBroker(kinds, history_size=100, max_lag=100)
    sock = FakeSocket()
    stream, task = await started(kinds, broker, registry, sock)
    sock.closed = True
    registry.sweep(later(0))
    async with asyncio.timeout(WAIT_S):
        await task
    assert stream.client_gone and sock.aborted and stream.cut_reason is None
    assert not registry.streams


@pytest.mark.parametrize("fmt", ["json", "html"])
async def test_a_cursor_from_another_epoch_gets_a_gap_frame_then_the_history(
    kinds: KindRegistry, registry: StreamRegistry, fmt: str
) -> None:
    elsewhere = MemoryBroker(kinds, history_size=100, max_lag=100)
    foreign = await elsewhere.publish("boom.room", "boom", {"text": "old"})
    broker = MemoryBroker(kinds, history_size=100, max_lag=100)
    for text in ("a", "b"):
        await broker.publish("boom.room", "boom", {"text": text})
    resume = Start(after=foreign.id, snapshot=fmt == "html")
    stream_request = StreamRequest(("boom.room",), fmt, EventFilter(kinds), resume, "test")
    sock = FakeSocket()
    _stream, task = await started(kinds, broker, registry, sock, stream_request)
    await until(lambda: b"event: gap" in sock.written, sock.changed, "the gap frame")
    events = SSEParser().feed(sock.written)
    gap = next(event for event in events if event.event == "gap")
    if fmt == "json":
        assert json.loads(gap.data) == {"channels": ["boom.room"]}
        await until(lambda: len(data_of(sock.written)) == 2, sock.changed, "the history")
        texts = [json.loads(body)["data"]["text"] for body in data_of(sock.written)]
        assert texts == ["a", "b"]
    else:
        assert 'id="boom-room-note" hx-swap-oob="innerHTML"' in gap.data
    assert registry.stats.gaps == 1
    await stopped(task)


async def test_a_filtered_html_stream_writes_only_matches_with_the_pattern_marked(
    kinds: KindRegistry, registry: StreamRegistry
) -> None:
    broker = MemoryBroker(kinds, history_size=100, max_lag=100)
    await broker.declare("boom.room", "boom")
    sock = FakeSocket()
    stream, task = await started(kinds, broker, registry, sock, request(kinds, "html", q="ee"))
    for text in ("deer", "cat", "bee"):
        await broker.publish("boom.room", "boom", {"text": text})
    await until(lambda: len(data_of(sock.written)) == 2, sock.changed, "2 matching rows")
    assert data_of(sock.written) == [
        "<li>d<mark>ee</mark>r 60</li>",
        "<li>b<mark>ee</mark> 60</li>",
    ]
    assert not stream.format.shared, "a highlighted frame is this stream's own"
    await stopped(task)


async def test_a_fresh_filtered_html_snapshot_keeps_only_matches_and_carries_the_cursor(
    kinds: KindRegistry, registry: StreamRegistry
) -> None:
    broker = MemoryBroker(kinds, history_size=100, max_lag=100)
    published = [
        await broker.publish("boom.room", "boom", {"text": text}) for text in ("deer", "cat")
    ]
    fresh = StreamRequest(
        ("boom.room",),
        "html",
        EventFilter(kinds, compile_user_regex("ee")),
        Start(snapshot=True),
        "test",
    )
    sock = FakeSocket()
    _stream, task = await started(kinds, broker, registry, sock, fresh)
    await until(lambda: bool(data_of(sock.written)), sock.changed, "the snapshot")
    (snapshot,) = [e for e in SSEParser().feed(sock.written) if e.event == "boom.room"]
    assert snapshot.data == '<ol hx-swap-oob="outerHTML"><li>d<mark>ee</mark>r 60</li></ol>'
    assert snapshot.id == published[-1].id, "the newest id, filtered out or not"
    await stopped(task)


async def test_at_shutdown_a_stream_blocked_on_its_socket_is_aborted_and_an_idle_one_ends(
    kinds: KindRegistry,
) -> None:
    registry = StreamRegistry(StreamTimings(heartbeat_s=60.0, write_timeout_s=60.0, retry_ms=1))
    broker = MemoryBroker(kinds, history_size=100, max_lag=100)
    blocked, idle = FullSocket(), FakeSocket()
    _one, blocked_task = await started(kinds, broker, registry, blocked)
    _two, idle_task = await started(kinds, broker, registry, idle)
    blocked.full = True
    await broker.publish("boom.room", "boom", {"text": "x"})
    async with asyncio.timeout(WAIT_S):
        await blocked.draining.wait()
    await registry.close_all(grace_s=WAIT_S)
    async with asyncio.timeout(WAIT_S):
        await asyncio.gather(blocked_task, idle_task)
    assert blocked.aborted and not idle.aborted
    assert not registry.streams and registry.stats.cuts == {}
