"""The seam between Quart and our streams.

Quart sends a response body chunk by chunk through its own loop, under
``RESPONSE_TIMEOUT``. A :class:`StreamResponse` is instead handed the ASGI
``send`` callable directly, so the stream owns its writes, its timing and its
end — and Quart's request machinery (routing, validation, errors, hooks)
still runs before it.
"""

from __future__ import annotations

from typing import Any

from quart import Response
from quart.asgi import ASGIHTTPConnection

from app.streams import EventStream


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
            await response.stream.run(send)
        else:
            await super()._send_response(send, response)
