"""The fast write path's fallbacks (the path itself runs in every end-to-end stream test)."""

from __future__ import annotations

from app.web.asgi import hypercorn_socket


async def test_a_send_that_is_not_hypercorn_http_1_1_gets_no_socket_writer() -> None:
    async def send(message: dict) -> None:
        return None

    assert hypercorn_socket(send) is None
    assert hypercorn_socket(print) is None
