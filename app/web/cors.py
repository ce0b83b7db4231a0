"""CORS for the read API: the origins in ``server.cors_origins`` may read streams and history.

A page on ``https://status.example`` subscribes with ``fetch`` (or an
EventSource polyfill) and a bearer token: the token is the credential, so no
cookie is involved and ``Access-Control-Allow-Credentials`` is not sent.

Deliberate oddities:
- Only reads are shared (``GET /events``, ``GET /api/channels``, ``GET
  /api/channels/<c>/events``). Publishing stays same-origin: the cross-site
  check (app/web/security.py) refuses a POST from a listed origin too, so a
  page elsewhere cannot publish with a token it was handed for reading.
- The origin is echoed, never ``*``, and ``Vary: Origin`` goes on every
  answer of those routes, so a cache never hands one origin's answer to another.
- A stream's headers are sent by the stream itself (app/web/streaming/loop.py), not by
  Quart: :func:`cors_headers` is what the stream route adds to them.
"""

from __future__ import annotations

from quart import Quart, Response, request

from app.web.asgi import STREAM_PATH
from app.web.errors import error_response
from app.web.runtime import current_runtime

ALLOWED_HEADERS = "Authorization, Last-Event-ID"
MAX_AGE_S = "600"


def is_read_path(path: str) -> bool:
    """True for the routes a listed origin may read."""
    return path == STREAM_PATH or path == "/api/channels" or path.startswith("/api/channels/")


def cors_headers(origin: str | None, allowed: tuple[str, ...]) -> list[tuple[str, str]]:
    """The headers an answer to ``origin`` carries: ``Vary`` always, the grant when listed."""
    headers = [("Vary", "Origin")]
    if origin is not None and origin.lower() in allowed:
        headers.append(("Access-Control-Allow-Origin", origin))
    return headers


def install_cors(app: Quart, allowed: tuple[str, ...]) -> None:
    """Answer preflights and mark read answers for the ``allowed`` origins (none: nothing)."""
    if not allowed:
        return

    @app.before_request
    async def preflight() -> Response | None:
        if request.method != "OPTIONS" or not is_read_path(request.path):
            return None
        origin = request.headers.get("Origin")
        if origin is None or origin.lower() not in allowed:
            return error_response(403, "this origin is not in server.cors_origins", None)
        response = Response(b"", status=204)
        response.headers["Access-Control-Allow-Methods"] = "GET"
        response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response.headers["Access-Control-Max-Age"] = MAX_AGE_S
        return response

    @app.after_request
    async def mark(response: Response) -> Response:
        if is_read_path(request.path) and request.method in ("GET", "HEAD", "OPTIONS"):
            for name, value in cors_headers(request.headers.get("Origin"), allowed):
                response.headers.add(name, value)
        return response


def stream_cors_headers() -> list[tuple[bytes, bytes]]:
    """:func:`cors_headers` for the stream answering this request, as ASGI header pairs."""
    allowed = current_runtime().settings.server.cors_origin_names
    if not allowed:
        return []
    return [
        (name.lower().encode(), value.encode())
        for name, value in cors_headers(request.headers.get("Origin"), allowed)
    ]
