"""The seam between Quart, Hypercorn and our streams.

Quart sends a response body chunk by chunk through its own loop, under
``RESPONSE_TIMEOUT``. A :class:`StreamResponse` is instead handed the ASGI
``send`` callable directly, so the stream owns its writes, its timing and its
end — and Quart's request machinery (routing, validation, errors, hooks)
still runs before it.

Deliberate oddities (do not "fix" without measuring):

- ``GET /events`` over Hypercorn's HTTP/1.1 does not go through Quart's
  ``ASGIHTTPConnection.__call__``, which keeps two tasks, an ``asyncio.wait``
  and the Request (its headers, its body with two events) alive for as long
  as the response lasts, and two more coroutine frames: about 10 KiB per open
  stream, a third of an idle stream's memory (docs/performance.md, S1).
  :class:`StreamingQuart` reads the request, lets Quart handle it in the
  connection's own task and drops it; only the stream stays.
  Without Quart's receiver task nobody hears ``http.disconnect``: the stream
  registry's sweeper looks at :attr:`ChunkedSocket.closed` instead.
- Once the headers are out, such a stream writes its chunks straight to the
  connection's transport (chunked framing by hand) instead of through ASGI
  ``send`` → Hypercorn's HTTP stream → h11's state machine → the TCP server's
  lock and ``drain()``. That path cost about 15 µs of the 40 µs per delivered
  event; with the socket in hand, the hub can also write a caught-up stream's
  events at publish time without waking its task. The headers and the final
  chunk still go through ``send``, so h11 and Hypercorn keep their state; the
  body bytes are the same.

- A stream that is cut aborts its connection (:func:`abort_transport`: RST,
  unsent bytes dropped), on the lean path and on Quart's path alike
  (:func:`stream_connection`): Hypercorn's own close flushes the buffer first,
  which for a client that never reads is never.
- A stream's connection gets a small kernel send buffer
  (:data:`SEND_BUFFER_BYTES`, :func:`limit_send_buffer`) instead of Linux's
  autotuned one, which grows to megabytes for a client that reads nothing:
  until that fills, a stalled client costs a write per event like a healthy
  one, and 200 of them took the server's time from 20 healthy neighbours
  (p99 1.9 s, issue 12.2). With the cap its buffer fills within a few hundred
  events, its stream parks in ``drain`` and costs nothing more until the cut.
  An SSE stream needs no more: 64 KiB in flight is 640 KiB/s at 100 ms RTT.

All rely on Hypercorn's internals (pinned in pyproject.toml) and fall back to
Quart's own path whenever they are not what they expect (HTTP/2, HEAD,
HTTP/1.0, another server); without a way to the connection a cut cancels the
stream's task instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import Any

from quart import Quart, Response
from quart.asgi import ASGIHTTPConnection

from app.streams import Abort, EventStream

STREAM_PATH = "/events"
HIGH_WATER_BYTES = 64 * 1024
SEND_BUFFER_BYTES = 32 * 1024  # the kernel doubles it for its bookkeeping
LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST, drops the queue


class StreamResponse(Response):
    """A response whose body is an :class:`EventStream`, never subject to a response timeout."""

    def __init__(self, stream: EventStream) -> None:
        super().__init__(b"", status=200)
        self.stream = stream
        self.timeout = None


class StreamingHTTPConnection(ASGIHTTPConnection):
    """Quart's HTTP connection, handing :class:`StreamResponse` bodies to the stream."""

    async def open_stream(self, receive: Any, send: Any) -> EventStream | None:
        """Read the request and let Quart answer it in this task, without Quart's two tasks.

        Returns the stream to run, or None when Quart's answer (an error, a
        redirect) has been sent instead or the client left mid-request.
        """
        request = self._create_request_from_scope(send)
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            request.body.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        request.body.set_complete()
        response = await self.app.handle_request(request)
        if isinstance(response, StreamResponse):
            return response.stream
        await asyncio.wait_for(
            self._send_response(send, response), self.app.config["RESPONSE_TIMEOUT"]
        )
        return None

    async def _send_response(self, send: Any, response: Any) -> None:
        if isinstance(response, StreamResponse):
            await response.stream.run(send, None, stream_connection(send))
        else:
            await super()._send_response(send, response)


class StreamingQuart(Quart):
    """The Quart app, with ``GET /events`` over Hypercorn's HTTP/1.1 served lean (see above)."""

    asgi_http_class = StreamingHTTPConnection

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        direct = _direct_socket(scope, send) if scope["type"] == "http" else None
        if direct is None:
            await self.asgi_app(scope, receive, send)
            return
        stream = await StreamingHTTPConnection(self, scope).open_stream(receive, send)
        if stream is not None:
            limit_send_buffer(direct.transport)
            await stream.run(send, direct)


def _direct_socket(scope: Any, send: Any) -> ChunkedSocket | None:
    if scope["path"] != STREAM_PATH or scope["method"] != "GET" or scope["http_version"] != "1.1":
        return None
    return hypercorn_socket(send)


def hypercorn_socket(send: Any) -> ChunkedSocket | None:
    """The connection under Hypercorn's HTTP/1.1 ``send``, or None if it is not that."""
    found = _hypercorn_connection(send)
    return ChunkedSocket(*found) if found is not None else None


def stream_connection(send: Any) -> Abort | None:
    """Ready the connection under Hypercorn's HTTP/1.x ``send`` for a stream; its abort, or None.

    For Quart's own path: the body still goes through ``send``, and the
    connection gets the same small send buffer and the same abort on a cut as
    on the lean path. None under HTTP/2 (one connection carries other
    streams) or another server.
    """
    found = _hypercorn_connection(send)
    if found is None:
        return None
    transport = found[0].transport
    limit_send_buffer(transport)
    return lambda: abort_transport(transport)


def limit_send_buffer(transport: asyncio.WriteTransport) -> None:
    """Cap the kernel's send buffer of a stream's connection (see the module docstring)."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError, ValueError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)


def abort_transport(transport: asyncio.WriteTransport) -> None:
    """Close ``transport`` at once: the kernel drops its unsent bytes and sends RST."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError, ValueError):  # ValueError: closed already
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    transport.abort()


def _hypercorn_connection(send: Any) -> tuple[asyncio.StreamWriter, Any] | None:
    """The writer and HTTP stream under Hypercorn's HTTP/1.x ``send``.

    ``send`` is ``HTTPStream.app_send``; its stream sends through
    ``H11Protocol.stream_send``, whose protocol sends through
    ``TCPServer.protocol_send``, which owns the connection's ``writer``.
    """
    http_stream = getattr(send, "__self__", None)
    h11_protocol = getattr(getattr(http_stream, "send", None), "__self__", None)
    if type(h11_protocol).__name__ != "H11Protocol" or not hasattr(http_stream, "closed"):
        return None
    tcp_server = getattr(getattr(h11_protocol, "send", None), "__self__", None)
    writer = getattr(tcp_server, "writer", None)
    return (writer, http_stream) if isinstance(writer, asyncio.StreamWriter) else None


class ChunkedSocket:
    """HTTP/1.1 chunks written straight to the connection's transport.

    A client that stops reading keeps the buffer past high water; the stream
    then waits in :meth:`drain` and the stream registry's ``write_timeout``
    cuts it, as it would a blocked ``send``.
    """

    __slots__ = ("http_stream", "transport", "writer")

    def __init__(self, writer: asyncio.StreamWriter, http_stream: Any) -> None:
        self.writer = writer
        self.transport = writer.transport
        self.http_stream = http_stream

    @property
    def closed(self) -> bool:
        """True once the client hung up (Hypercorn saw its input end) or the socket closed."""
        return bool(self.http_stream.closed or self.transport.is_closing())

    def write_now(self, body: bytes) -> bool:
        """Write one chunk without waiting; False once the buffer is past high water."""
        if not body:
            return True  # an empty chunk is the last chunk: it would end the response
        if self.transport.is_closing():
            raise ConnectionResetError("client connection closed")
        self.transport.write(b"%x\r\n%b\r\n" % (len(body), body))
        return bool(self.transport.get_write_buffer_size() <= HIGH_WATER_BYTES)

    async def drain(self) -> None:
        """Wait until the transport's buffer is under its low-water mark."""
        await self.writer.drain()

    def abort(self) -> None:
        """Close the connection at once, dropping what is unsent (RST)."""
        abort_transport(self.transport)
