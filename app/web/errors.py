"""JSON errors for every route: a fitting 4xx with a message, never a traceback."""

from __future__ import annotations

import logging
import math
from typing import Any

from quart import Quart, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from app.broker.base import BrokerUnavailable, ChannelLimit, KindConflict
from app.events import PayloadError

log = logging.getLogger("pulseboard.http")


class RateLimited(Exception):
    """The caller spent its budget; answer 429 with ``Retry-After``."""

    def __init__(self, wait_s: float) -> None:
        super().__init__(f"rate limited for {wait_s:.2f} s")
        self.retry_after_s = max(1, math.ceil(wait_s))


def error_response(
    status: int, message: str, detail: Any = None, headers: dict[str, str] | None = None
) -> Response:
    """``{"error": message, "detail": detail}`` with ``status``."""
    response = jsonify({"error": message, "detail": detail})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def install_error_handlers(app: Quart) -> None:
    """Map our exceptions and Werkzeug's HTTP errors to JSON responses."""

    @app.errorhandler(PayloadError)
    async def payload_error(error: PayloadError) -> Response:
        return error_response(400, str(error), {"field": error.field})

    @app.errorhandler(KindConflict)
    async def kind_conflict(error: KindConflict) -> Response:
        return error_response(409, str(error), {"channel": error.channel, "kind": error.kind})

    @app.errorhandler(ChannelLimit)
    async def channel_limit(error: ChannelLimit) -> Response:
        detail = {"limit": "limits.max_channels", "max_channels": error.max_channels}
        return error_response(429, str(error), detail | {"channel": error.channel})

    @app.errorhandler(RateLimited)
    async def rate_limited(error: RateLimited) -> Response:
        headers = {"Retry-After": str(error.retry_after_s)}
        return error_response(429, "rate limited: slow down", None, headers)

    @app.errorhandler(BrokerUnavailable)
    async def unavailable(error: BrokerUnavailable) -> Response:
        headers = {"Retry-After": str(error.retry_after_s)}
        return error_response(503, f"broker unavailable: {error}", None, headers)

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response:
        # Werkzeug's own headers (a 405's Allow) stay; the body is ours, so its type is not.
        headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
        return error_response(error.code or 500, error.name.lower(), error.description, headers)

    @app.errorhandler(Exception)
    async def unexpected(error: Exception) -> Response:
        """The safety net: logged once with its context; the client sees no traceback."""
        log.exception(
            "unhandled error %s: %s %s client=%s",
            type(error).__name__,
            request.method,
            request.path,
            request.remote_addr,
        )
        return error_response(500, "internal error", None)
