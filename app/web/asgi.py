"""The seam between Quart, Hypercorn and our streams.

Quart sends a response body chunk by chunk through its own loop, under
``RESPONSE_TIMEOUT``. A :class:`StreamResponse` is instead handed the ASGI
``send`` callable directly, so the stream owns its writes, its timing and its
end — and Quart's request machinery (routing, validation, errors, hooks)
still runs before it.

Deliberate oddity (do not "fix" without measuring): on Hypercorn's HTTP/1.1
path, once the headers are out, a stream writes its chunks straight to the
connection's transport (chunked framing by hand) instead of through ASGI
``send`` → Hypercorn's HTTP stream → h11's state machine → the TCP server's
lock and ``drain()``. That path cost about 15 µs of the 40 µs per delivered
event (docs/performance.md); with the socket in hand, the hub can also write a
caught-up stream's events at publish time without waking its task. The
headers and the final chunk still go through ``send``, so h11 and Hypercorn
keep their state; the body bytes are the same.
It relies on Hypercorn's internals (pinned in pyproject.toml) and falls back
to ``send`` whenever they are not what it expects (HTTP/2, TLS wrappers
aside, HEAD, HTTP/1.0, another server).
"""

from __future__ import annotations

import asyncio
from typing import Any

from quart import Response
from quart.asgi import ASGIHTTPConnection

from app.streams import EventStream

HIGH_WATER_BYTES = 64 * 1024


class StreamResponse(Response):
    """A response whose body is an :class:`EventStream`, never subject to a response timeout."""

    def __init__(self, stream: EventStream) -> None:
        super().__init__(b"", status=200)
        self.stream = stream
        self.timeout = None


class StreamingHTTPConnection(ASGIHTTPConnection):
    """Quart's HTTP connection, handing :class:`StreamResponse` bodies to the stream."""

    async def _send_response(self, send: Any, response: Any) -> None:
        if isinstance(response, StreamResponse):
            chunked = self.scope["http_version"] == "1.1" and self.scope["method"] == "GET"
            writer = hypercorn_socket_writer(send) if chunked else None
            await response.stream.run(send, ChunkedSocket(writer) if writer else None)
        else:
            await super()._send_response(send, response)


def hypercorn_socket_writer(send: Any) -> asyncio.StreamWriter | None:
    """The StreamWriter under Hypercorn's HTTP/1.1 ``send``, or None if it is not that.

    ``send`` is ``HTTPStream.app_send``; its stream sends through
    ``H11Protocol.stream_send``, whose protocol sends through
    ``TCPServer.protocol_send``, which owns the connection's ``writer``.
    """
    http_stream = getattr(send, "__self__", None)
    h11_protocol = getattr(getattr(http_stream, "send", None), "__self__", None)
    if type(h11_protocol).__name__ != "H11Protocol":
        return None
    tcp_server = getattr(getattr(h11_protocol, "send", None), "__self__", None)
    writer = getattr(tcp_server, "writer", None)
    return writer if isinstance(writer, asyncio.StreamWriter) else None


class ChunkedSocket:
    """HTTP/1.1 chunks written straight to the connection's transport.

    A client that stops reading keeps the buffer past high water; the stream
    then waits in :meth:`drain` and the stream registry's ``write_timeout``
    cuts it, as it would a blocked ``send``.
    """

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.transport = writer.transport

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
