"""The seam between Quart and our streams, through Quart's public API and ASGI alone.

Quart sends a response body chunk by chunk through its own loop, under
``RESPONSE_TIMEOUT``. A :class:`StreamResponse` is instead run by the stream
with the ASGI ``send`` in hand, so the stream owns its writes, its timing and
its end, and Quart's request machinery (routing, validation, errors, hooks)
still runs before it.

Every ``POST`` goes to :attr:`StreamingQuart.lean_publish` when the factory
set one (:mod:`app.web.lean_publish`: a plain JSON publish answered without
Quart; everything else it hands back to Quart).

Which way a ``GET /events`` goes is :mod:`app.web.fastpath`'s call, probed
once at start (:attr:`StreamingQuart.fast_paths`): its lean path when it is
live and the request fits (Hypercorn, HTTP/1.1), else the standard path here.

Deliberate oddity of the standard path: Quart sends a response's start
message itself, before its body. A :class:`StreamResponse` carries a marker
header; :class:`StreamGate`, the ``send`` Quart is given for ``/events``,
drops the start message that carries it, and once the stream has taken the
connection (Quart iterating its body runs it) drops Quart's closing message
too. The stream sends its own (a 503 when the broker is unreachable).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import cast

from hypercorn.typing import (
    ASGIReceiveCallable,
    ASGISendCallable,
    ASGISendEvent,
    HTTPScope,
    Scope,
)
from quart import Quart, Response

from app.web import fastpath
from app.web.fastpath import STANDARD, FastPaths
from app.web.streaming.loop import EventStream
from app.web.streaming.writer import Send

STREAM_PATH = "/events"
STREAM_MARK = (b"x-pulseboard-stream", b"1")

PostHandler = Callable[[HTTPScope, ASGIReceiveCallable, ASGISendCallable], Awaitable[None]]


class StreamGate:
    """The ``send`` Quart gets for ``GET /events`` on the standard path (module docstring)."""

    __slots__ = ("connection_control", "send", "taken")

    def __init__(self, send: ASGISendCallable, connection_control: bool) -> None:
        self.send = send
        self.connection_control = connection_control
        self.taken = False

    async def __call__(self, message: ASGISendEvent) -> None:
        if self.taken:
            return  # the stream owns the response: Quart's closing message is not wanted
        if message["type"] == "http.response.start" and STREAM_MARK in message["headers"]:
            return  # the stream sends its own
        await self.send(message)


_gate: ContextVar[StreamGate] = ContextVar("pulseboard_stream_gate")


class _StreamBody:
    """A :class:`StreamResponse`'s body for Quart: iterating it runs the stream, yields nothing."""

    def __init__(self, stream: EventStream) -> None:
        self.stream = stream

    def __aiter__(self) -> _StreamBody:
        return self

    async def __anext__(self) -> bytes:
        gate = _gate.get()
        gate.taken = True
        abort = fastpath.stream_connection(gate.send) if gate.connection_control else None
        await self.stream.run(cast(Send, gate.send), None, abort)
        raise StopAsyncIteration


class StreamResponse(Response):
    """A response whose body is an :class:`EventStream`, never subject to a response timeout."""

    def __init__(self, stream: EventStream) -> None:
        super().__init__(
            _StreamBody(stream),
            status=200,
            headers={STREAM_MARK[0].decode(): STREAM_MARK[1].decode()},
        )
        self.stream = stream
        self.timeout = None


class StreamingQuart(Quart):
    """The Quart app, with ``GET /events`` handed to its stream (see the module docstring)."""

    fast_paths: FastPaths = STANDARD
    lean_publish: PostHandler | None = None

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "http" or scope["path"] != STREAM_PATH:
            lean = self.lean_publish
            if lean is not None and scope["type"] == "http" and scope["method"] == "POST":
                await lean(scope, receive, send)
            else:
                await self.asgi_app(scope, receive, send)
            return
        direct = fastpath.lean_socket(scope, send) if self.fast_paths.lean_stream else None
        if direct is None:
            await self._standard(scope, receive, send)
            return
        stream = await self._lean(scope, receive, send)
        if stream is not None:
            fastpath.limit_send_buffer(direct.transport)
            await stream.run(cast(Send, send), direct)

    async def _lean(
        self, scope: HTTPScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> EventStream | None:
        """The stream to run; None when Quart's answer went out instead or the client left.

        Only the stream outlives this call, not the request and response around it.
        """
        response = await fastpath.handle_request(self, scope, receive, send)
        if isinstance(response, StreamResponse):
            return response.stream
        if response is not None:
            await fastpath.send_response(self, scope, send, response)
        return None

    async def _standard(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        token = _gate.set(StreamGate(send, self.fast_paths.connection_control))
        try:
            await self.asgi_app(scope, receive, _gate.get())
        finally:
            _gate.reset(token)
