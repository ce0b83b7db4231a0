"""Filtered streams share their filter and their frames (issue 18): a real broker and
renderer, fake sockets (``FakeSocket`` of test_loop), no server.

Counted, not timed: how often a filter is evaluated and a partial rendered.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
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
from app.web.streaming.registry import StreamRegistry, StreamTimings
from tests.web.streaming.test_loop import WAIT_S, FakeSocket, SendRecorder, data_of, until

CHANNEL = "shout.room"
PARTIAL = (
    "{%- if mode == \"event\" -%}<li class=\"lvl-{{ event.data.get('level', 'info') }}\">"
    "{{ tick() }}"
    "{{ mark(event.data.text) }}</li>"
    '{%- else -%}<ol hx-swap-oob="outerHTML">{% for e in events %}<li>{{ mark(e.data.text) }}'
    "</li>{% endfor %}</ol>{%- endif -%}"
)


class ShoutPayload(msgspec.Struct, forbid_unknown_fields=True):
    text: str
    level: str = "info"


@pytest.fixture
def looked_at() -> list[str]:
    """The texts the kind handed a filter (one per evaluation)."""
    return []


@pytest.fixture
def kinds(tmp_path: Path, looked_at: list[str]) -> KindRegistry:
    (tmp_path / "partials").mkdir()
    (tmp_path / "partials" / "_shout.html").write_text(PARTIAL)
    view = KindView(template="partials/_shout.html", template_dir=tmp_path)
    registry = KindRegistry()
    registry.register(
        Kind(
            "shout",
            ShoutPayload,
            view,
            text=lambda data: looked_at.append(data["text"]) or str(data["text"]),
            level=lambda data: str(data.get("level", "info")),
        )
    )
    return registry


@pytest.fixture
def renders() -> list[str]:
    return []


@pytest.fixture
def renderer(kinds: KindRegistry, renders: list[str]) -> Renderer:
    """The renderer, its partial ticking ``renders`` on each run."""
    env = create_environment(kinds)
    env.globals["tick"] = lambda: renders.append("x") or ""
    return Renderer(env, kinds)


@pytest.fixture
async def registry() -> AsyncIterator[StreamRegistry]:
    streams = StreamRegistry(StreamTimings(heartbeat_s=60.0, write_timeout_s=60.0, retry_ms=1000))
    yield streams
    await streams.close_all(grace_s=WAIT_S)


def viewer(kinds: KindRegistry, fmt: str, pattern: Any = None, level: str | None = None) -> Any:
    return StreamRequest((CHANNEL,), fmt, EventFilter(kinds, pattern, level), Start(), "test")


async def open_streams(
    broker: MemoryBroker,
    renderer: Renderer,
    registry: StreamRegistry,
    requests: list[StreamRequest],
) -> tuple[list[FakeSocket], list[asyncio.Task[None]]]:
    """Run one stream per request on its own fake direct socket; return once all are parked."""
    sockets = [FakeSocket() for _ in requests]
    tasks = [
        asyncio.create_task(EventStream(req, broker, renderer, registry).run(SendRecorder(), sock))
        for req, sock in zip(requests, sockets, strict=True)
    ]
    for sock in sockets:  # written its start: then it is parked (FakeSocket never blocks)
        await until(lambda s=sock: b"retry:" in s.written, sock.changed, "the stream to start")
    return sockets, tasks


async def close(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_filter_shared_by_many_streams_is_evaluated_once_per_event_and_rendered_once(
    kinds: KindRegistry,
    renderer: Renderer,
    registry: StreamRegistry,
    renders: list[str],
    looked_at: list[str],
) -> None:
    broker = MemoryBroker(kinds, history_size=100, max_lag=100)
    await broker.declare(CHANNEL, "shout")
    pattern = compile_user_regex("disk")
    requests = [viewer(kinds, "html", pattern) for _ in range(6)]
    requests += [viewer(kinds, "html") for _ in range(2)]  # unfiltered html beside them
    sockets, tasks = await open_streams(broker, renderer, registry, requests)

    texts = ["disk full", "all good", "disk ok", "cpu hot"]
    for text in texts:
        await broker.publish(CHANNEL, "shout", {"text": text})

    for sock in sockets[6:]:
        await until(lambda s=sock: len(data_of(s.written, CHANNEL)) == 4, sock.changed, "4 rows")
    for sock in sockets[:6]:
        await until(lambda s=sock: len(data_of(s.written, CHANNEL)) == 2, sock.changed, "2 rows")
    assert looked_at == texts, "one evaluation per event, not per stream"
    assert len(renders) == len(texts), "one render per event for filtered and unfiltered alike"
    rows = data_of(sockets[0].written, CHANNEL)
    assert rows == [
        '<li class="lvl-info"><mark>disk</mark> full</li>',
        '<li class="lvl-info"><mark>disk</mark> ok</li>',
    ]
    assert all(data_of(sock.written, CHANNEL) == rows for sock in sockets[1:6])
    plain = data_of(sockets[6].written, CHANNEL)
    assert plain == [f'<li class="lvl-info">{text}</li>' for text in texts]
    await close(tasks)


async def test_mixed_filters_and_levels_get_the_frames_each_would_get_alone(
    kinds: KindRegistry, renderer: Renderer, registry: StreamRegistry
) -> None:
    broker = MemoryBroker(kinds, history_size=100, max_lag=100)
    await broker.declare(CHANNEL, "shout")
    shapes: list[tuple[str, str | None, str | None]] = [
        ("html", "a<b", None),
        ("html", "a<b", "warn"),
        ("html", None, "warn"),
        ("html", "x|a", None),
        ("json", "a<b", None),
        ("json", None, "error"),
        ("json", "x", "warn"),
    ]
    requests = [
        viewer(kinds, fmt, compile_user_regex(q) if q else None, level) for fmt, q, level in shapes
    ]
    sockets, tasks = await open_streams(broker, renderer, registry, requests)
    published = [
        {"text": "a<b & c", "level": "info"},
        {"text": "x marks", "level": "warn"},
        {"text": "a<b again", "level": "error"},
        {"text": "nothing", "level": "debug"},
    ]
    for payload in published:
        await broker.publish(CHANNEL, "shout", payload)
    sentinel = await broker.publish(CHANNEL, "shout", {"text": "a<b x end", "level": "error"})

    for sock in sockets:  # every stream gets the last event: then it has all it will get
        await until(lambda s=sock: sentinel.id.encode() in s.written, sock.changed, "the end")
    html = [data_of(sock.written, CHANNEL) for sock in sockets[:4]]
    assert html[0] == [
        '<li class="lvl-info"><mark>a&lt;b</mark> &amp; c</li>',
        '<li class="lvl-error"><mark>a&lt;b</mark> again</li>',
        '<li class="lvl-error"><mark>a&lt;b</mark> x end</li>',
    ]
    assert html[1] == html[0][1:]
    assert html[2] == [
        '<li class="lvl-warn">x marks</li>',
        '<li class="lvl-error">a&lt;b again</li>',
        '<li class="lvl-error">a&lt;b x end</li>',
    ]
    assert html[3] == [
        '<li class="lvl-info"><mark>a</mark>&lt;b &amp; c</li>',
        '<li class="lvl-warn"><mark>x</mark> m<mark>a</mark>rks</li>',
        '<li class="lvl-error"><mark>a</mark>&lt;b <mark>a</mark>g<mark>a</mark>in</li>',
        '<li class="lvl-error"><mark>a</mark>&lt;b <mark>x</mark> end</li>',
    ]
    json_texts = [
        msgspec.json.decode(row)["data"]["text"] for row in data_of(sockets[4].written, CHANNEL)
    ]
    assert json_texts == ["a<b & c", "a<b again", "a<b x end"]
    errors = [
        msgspec.json.decode(row)["data"]["text"] for row in data_of(sockets[5].written, CHANNEL)
    ]
    assert errors == ["a<b again", "a<b x end"]
    warned = [msgspec.json.decode(row) for row in data_of(sockets[6].written, CHANNEL)]
    assert [row["data"]["text"] for row in warned] == ["x marks", "a<b x end"]
    await close(tasks)


async def test_a_filtered_stream_is_parked_and_skips_what_its_filter_leaves_out(
    kinds: KindRegistry, renderer: Renderer, registry: StreamRegistry
) -> None:
    broker = MemoryBroker(kinds, history_size=100, max_lag=100)
    await broker.declare(CHANNEL, "shout")
    sockets, tasks = await open_streams(
        broker, renderer, registry, [viewer(kinds, "html", compile_user_regex("yes"))]
    )
    stream = next(iter(registry.streams))
    assert stream.subscription is not None and stream.subscription.deliver is not None
    for text in ("no", "yes 1", "no", "yes 2"):
        await broker.publish(CHANNEL, "shout", {"text": text})
    await until(lambda: len(data_of(sockets[0].written, CHANNEL)) == 2, sockets[0].changed, "rows")
    rows = data_of(sockets[0].written, CHANNEL)
    assert rows == [
        '<li class="lvl-info"><mark>yes</mark> 1</li>',
        '<li class="lvl-info"><mark>yes</mark> 2</li>',
    ]
    assert stream.subscription.deliver is not None, "still parked: the hub kept delivering"
    assert registry.stats.delivered[CHANNEL] == 2
    await close(tasks)
