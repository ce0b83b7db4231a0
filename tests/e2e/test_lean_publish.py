"""The lean publish path answers byte for byte as Quart does, and hands Quart everything else.

Each request goes over a real socket to a real Hypercorn twice: once with the
lean path on, once with it off (Quart alone). The two answers must be the
same bytes but for the ``date`` header and the events' ids (and so the length).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.config import Config
from hypercorn.events import Event, RawData

from app.broker.base import BrokerUnavailable
from app.serve.factory import create_app, runtime_of
from app.settings import settings_from_dict
from app.web import fastpath
from app.web.asgi import StreamingQuart
from app.web.lean_publish import ROUTE, LeanPublish
from tests.e2e.test_fast_path import served

PUBLISHER = "lean-publisher-token"
SCOPED = "lean-scoped-token"
OPEN = {
    "server": {"body_timeout": 0.5},
    "limits": {"body_bytes": {"notify": 64}},
    "channels": [
        {"name": "lean", "kind": "notify"},
        {"name": "lean.log", "kind": "log"},
        {"name": "lean.chat", "kind": "chat"},
    ],
}
SECURED = {
    "auth": {
        "publish_tokens": [PUBLISHER],
        "tokens": [{"token": SCOPED, "publish": ["other.*"]}],
        "secret_key": "a-test-secret-key-long-enough",
    },
    "channels": [{"name": "lean.auth", "kind": "notify"}],
}
LIMITED = {
    "limits": {"publish_rate": 0.001, "publish_burst": 1},
    "channels": [{"name": "lean.rate", "kind": "notify"}],
}
GOOD = b'{"message":"hi"}'


def post(
    path: str,
    body: bytes = GOOD,
    content_type: str | None = "application/json",
    extra: tuple[str, ...] = (),
    host: str = "127.0.0.1",
) -> bytes:
    """A raw HTTP/1.1 POST."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    return ("\r\n".join([*lines, *extra]) + "\r\n\r\n").encode() + body


async def answer(reader: asyncio.StreamReader) -> bytes:
    """One response, its ``date`` and ``content-length`` headers and event ids blanked."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    length = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
    body = await asyncio.wait_for(reader.readexactly(int(length.group(1))), 10) if length else b""
    head = re.sub(rb"(date|content-length): [^\r]*\r\n", b"", head, flags=re.IGNORECASE)
    return head + re.sub(rb'"[0-9a-f]{8}-[0-9]+"', b'"ID"', body)


async def exchange(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        return await answer(reader)
    finally:
        writer.close()


class Counted:
    """The app with its lean path, counting what the lean path hands to Quart."""

    def __init__(self, app: StreamingQuart, port: int) -> None:
        self.app, self.port = app, port
        self.lean = app.lean_publish
        assert isinstance(self.lean, LeanPublish)
        self.handed: list[str] = []
        fallback = self.lean.fallback

        async def counting(scope: Any, receive: Any, send: Any) -> None:
            self.handed.append(scope["path"])
            await fallback(scope, receive, send)

        self.lean.fallback = counting

    async def both(self, raw: bytes) -> tuple[bytes, bytes, bool]:
        """The answers with the lean path and without it; whether Quart took the first."""
        before = len(self.handed)
        lean = await exchange(self.port, raw)
        handed = len(self.handed) > before
        self.app.lean_publish = None
        try:
            standard = await exchange(self.port, raw)
        finally:
            self.app.lean_publish = self.lean
        return lean, standard, handed


async def counted(config: dict[str, Any]) -> AsyncIterator[Counted]:
    app = create_app(settings_from_dict(config), run_sources=False)
    async with app.test_app(), served(app) as port:
        yield Counted(app, port)


@pytest.fixture
async def open_app() -> AsyncIterator[Counted]:
    async for app in counted(OPEN):
        yield app


@pytest.fixture
async def secured_app() -> AsyncIterator[Counted]:
    async for app in counted(SECURED):
        yield app


@pytest.fixture
async def limited_app() -> AsyncIterator[Counted]:
    async for app in counted(LIMITED):
        yield app


EVENTS = "/api/channels/lean/events"
CHAT = "/api/channels/lean.chat/events"
AUTH = "/api/channels/lean.auth/events"
FORM = "application/x-www-form-urlencoded"
OPEN_MATRIX = {  # name: (request, status, answered by the lean path)
    "good JSON": (post(EVENTS), 201, True),
    "JSON, charset": (post(EVENTS, content_type="application/json; charset=utf-8"), 201, True),
    "JSON, capitals": (post(EVENTS, content_type="Application/JSON"), 201, True),
    "JSON, then text": (post(EVENTS, content_type="application/json, text/plain"), 201, False),
    "bad JSON": (post(EVENTS, b'{"message":'), 400, False),
    "not an object": (post(EVENTS, b"[1, 2]"), 400, False),
    "a field the kind lacks": (post(EVENTS, b'{"message":"x","nope":1}'), 400, False),
    "not UTF-8": (post(EVENTS, b'{"message":"\xff"}'), 400, False),
    "too large": (post(EVENTS, b'{"message":"' + b"x" * 80 + b'"}'), 413, False),
    "wrong kind": (post("/api/channels/lean.log/events"), 409, False),
    "unknown query parameter": (post(EVENTS + "?nope=1"), 400, False),
    "ntfy query parameter": (post(EVENTS + "?title=T"), 201, False),
    "ntfy header": (post(EVENTS, extra=("X-Title: T",)), 201, False),
    "form body": (post(EVENTS, b"message=hi", FORM), 201, False),
    "plain text": (post(EVENTS, b"hi", "text/plain"), 201, False),
    "no content type": (post(EVENTS, content_type=None), 201, False),
    "NDJSON batch": (post(EVENTS, GOOD + b"\n" + GOOD, "application/x-ndjson"), 201, False),
    "a chat channel (a form kind)": (post(CHAT, b'{"user":"a","text":"b"}'), 201, False),
    "htmx form post": (post(CHAT, b"user=a&text=b", FORM, ("HX-Request: true",)), 201, False),
    "an invalid channel name": (post("/api/channels/no%20way/events"), 400, False),
    "unknown Host": (post(EVENTS, host="evil.example"), 421, False),
    "cross-site Origin": (post(EVENTS, extra=("Origin: https://evil.example",)), 403, False),
    "same-site Origin": (post(EVENTS, extra=("Origin: http://127.0.0.1",)), 201, False),
}  # fmt: skip


async def assert_alike(app: Counted, case: tuple[bytes, int, bool]) -> None:
    """Both paths answer ``request`` with the same bytes and ``status``; the lean one kept it
    when ``lean``, else handed it to Quart."""
    request, status, lean = case
    with_lean, without, handed = await app.both(request)
    assert with_lean == without
    assert with_lean.startswith(f"HTTP/1.1 {status} ".encode()), with_lean
    assert handed is not lean


@pytest.mark.parametrize("name", OPEN_MATRIX)
async def test_lean_and_quart_answer_alike(open_app: Counted, name: str) -> None:
    await assert_alike(open_app, OPEN_MATRIX[name])


async def test_a_new_channel_is_quarts_then_lean(open_app: Counted) -> None:
    path = "/api/channels/lean.new/events"
    first, _, handed_first = await open_app.both(post(path))
    second, _, handed_second = await open_app.both(post(path))
    assert first == second
    assert first.startswith(b"HTTP/1.1 201 ")
    assert handed_first and not handed_second


SECURED_MATRIX = {
    "no token": (post(AUTH), 401, False),
    "wrong token": (post(AUTH, extra=("Authorization: Bearer nope",)), 401, False),
    "token of other channels": (post(AUTH, extra=(f"Authorization: Bearer {SCOPED}",)), 403, False),
    "good token": (post(AUTH, extra=(f"Authorization: Bearer {PUBLISHER}",)), 201, True),
    "a cookie": (post(AUTH, extra=("Cookie: QUART_AUTH=x",)), 401, False),
}  # fmt: skip


@pytest.mark.parametrize("name", SECURED_MATRIX)
async def test_lean_and_quart_answer_alike_with_tokens(secured_app: Counted, name: str) -> None:
    await assert_alike(secured_app, SECURED_MATRIX[name])


async def test_rate_limited_alike_and_charged_once(limited_app: Counted) -> None:
    raw = post("/api/channels/lean.rate/events")
    first = await exchange(limited_app.port, raw)
    assert first.startswith(b"HTTP/1.1 201 ")
    assert not limited_app.handed
    with_lean, without, handed = await limited_app.both(raw)
    assert with_lean == without
    assert with_lean.startswith(b"HTTP/1.1 429 ")
    assert b"retry-after: 1000" in with_lean.lower()
    assert handed


async def test_keep_alive_connection_takes_several_lean_posts(open_app: Counted) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", open_app.port)
    try:
        for _ in range(3):
            writer.write(post(EVENTS))
            assert (await answer(reader)).startswith(b"HTTP/1.1 201 ")
        writer.write(post(EVENTS, b"{bad"))
        assert (await answer(reader)).startswith(b"HTTP/1.1 400 ")
        writer.write(post(EVENTS))
        assert (await answer(reader)).startswith(b"HTTP/1.1 201 ")
    finally:
        writer.close()
    assert open_app.handed == [EVENTS]


async def test_lean_posts_are_counted_in_metrics(open_app: Counted) -> None:
    before = await requests_counted(open_app.port)
    await exchange(open_app.port, post(EVENTS))
    assert await requests_counted(open_app.port) == before + 1
    assert not open_app.handed


async def requests_counted(port: int) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
    text = (await asyncio.wait_for(reader.read(), 10)).decode()
    writer.close()
    label = f'route="{ROUTE}",status="201"'
    lines = [line for line in text.splitlines() if line.startswith("pulseboard_http_requests")]
    return sum(float(line.split(" ")[-1]) for line in lines if label in line and "_total" in line)


async def test_a_body_that_comes_later_is_still_lean(open_app: Counted) -> None:
    raw = post(EVENTS)
    reader, writer = await asyncio.open_connection("127.0.0.1", open_app.port)
    try:
        writer.write(raw[:-4])
        await writer.drain()
        await asyncio.sleep(0.1)  # the request is in: its body is not (a timer is needed)
        writer.write(raw[-4:])
        assert (await answer(reader)).startswith(b"HTTP/1.1 201 ")
    finally:
        writer.close()
    assert not open_app.handed


async def test_a_body_that_never_comes_is_quarts_408(open_app: Counted) -> None:
    raw = post(EVENTS)[:-4]
    with_lean, without, handed = await open_app.both(raw)
    assert with_lean == without
    assert with_lean.startswith(b"HTTP/1.1 408 ")
    assert handed


async def test_a_publish_that_fails_is_quarts_503_and_tried_once(
    open_app: Counted, monkeypatch: pytest.MonkeyPatch
) -> None:
    tries: list[str] = []

    async def unreachable(channel: str, kind: str, data: dict[str, Any]) -> None:
        tries.append(channel)
        raise BrokerUnavailable("the broker is away")

    monkeypatch.setattr(runtime_of(open_app.app), "publish_valid", unreachable)
    with_lean, without, handed = await open_app.both(post(EVENTS))
    assert with_lean == without
    assert with_lean.startswith(b"HTTP/1.1 503 ")
    assert handed
    assert tries == ["lean", "lean"]  # once per path: Quart answered the lean path's error


@pytest.fixture
def direct(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each lean 201 went out in one write (``fastpath.answer``) or through ``send``."""
    written: list[bool] = []
    real = fastpath.answer

    async def spied(*args: Any) -> bool:
        written.append(await real(*args))
        return written[-1]

    monkeypatch.setattr(fastpath, "answer", spied)
    return written


async def test_pipelined_posts_are_answered_in_order_each_in_one_write(
    open_app: Counted, direct: list[bool]
) -> None:
    messages = ("one", "two", "three")
    reader, writer = await asyncio.open_connection("127.0.0.1", open_app.port)
    try:
        writer.write(b"".join(post(EVENTS, b'{"message":"%s"}' % m.encode()) for m in messages))
        answers = [await answer(reader) for _ in messages]
    finally:
        writer.close()
    assert all(one.startswith(b"HTTP/1.1 201 ") for one in answers), answers
    assert direct == [True, True, True]
    history = await runtime_of(open_app.app).broker.history("lean", None, 10)
    assert [event.data["message"] for event in history.events][-3:] == list(messages)


async def closed_after_answer(port: int, raws: list[bytes]) -> list[bytes]:
    """The answers to ``raws`` sent one by one on one connection, which must then be closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        answers = []
        for raw in raws:
            writer.write(raw)
            answers.append(await answer(reader))
        assert await asyncio.wait_for(reader.read(), 10) == b""
        return answers
    finally:
        writer.close()


async def test_a_client_asking_to_close_gets_the_close_and_the_same_bytes(
    open_app: Counted, direct: list[bool]
) -> None:
    raw = post(EVENTS, extra=("Connection: close",))
    with_lean, without, handed = await open_app.both(raw)
    assert with_lean == without
    assert b"connection: close\r\n" in with_lean.lower()
    assert not handed and direct == [False]  # lean, but h11 says the close
    assert (await closed_after_answer(open_app.port, [raw]))[0] == with_lean


async def test_the_last_request_a_connection_may_carry_says_close(
    open_app: Counted, direct: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Config, "keep_alive_max_requests", 2)
    first, last = await closed_after_answer(open_app.port, [post(EVENTS), post(EVENTS)])
    assert first.startswith(b"HTTP/1.1 201 ") and last.startswith(b"HTTP/1.1 201 ")
    assert b"connection" not in first.lower()
    assert b"connection: close\r\n" in last.lower()
    assert direct == [True, False]


async def test_past_high_water_the_answer_waits_in_hypercorns_send(
    open_app: Counted, direct: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[bytes] = []
    real = TCPServer.protocol_send

    async def spied(server: TCPServer, event: Event) -> None:
        if isinstance(event, RawData):
            waits.append(event.data)
        await real(server, event)

    monkeypatch.setattr(TCPServer, "protocol_send", spied)
    monkeypatch.setattr(fastpath, "HIGH_WATER_BYTES", -1)  # every answer is past high water
    reader, writer = await asyncio.open_connection("127.0.0.1", open_app.port)
    try:
        writer.write(post(EVENTS) * 3)
        answers = [await answer(reader) for _ in range(3)]
    finally:
        writer.close()
    assert all(one.startswith(b"HTTP/1.1 201 ") for one in answers), answers
    assert direct == [True, True, True]
    assert waits == [b"", b"", b""]  # no bytes through Hypercorn's send: only its drain
