"""``POST /api/channels/<c>/events`` with one JSON event, answered without Quart's machinery.

A single POST cost about 0.5 ms of CPU through Quart (request and response
objects, routing, four before- and four after-request hooks, ``jsonify``),
more than its fan-out (docs/performance.md, "Single POSTs"). The common shape,
a JSON body to an existing channel, takes this ASGI handler instead: the same
checks in the same order (Host, bearer token, channel name, kind, body size,
JSON, schema, rate), then the publish and a ``201 {"id": ...}`` with Quart's
own headers. It only ever answers 201. Anything else goes to Quart with the
request as it came (the body read so far replayed), so every refusal, every
form, ntfy header, NDJSON batch, cookie or ``Origin`` is Quart's to answer,
byte for byte the same (tests/e2e/test_lean_publish.py).

Deliberate oddities:
- A refusal after the budget is charged (the rate limit) or a publish that
  raised goes to Quart with the error in the scope (:data:`FAILED`): the
  publish route raises it first thing, so Quart answers it (error handler,
  hooks, metrics) without charging or publishing twice.
- A body that does not arrive within ``server.body_timeout`` goes to Quart,
  which waits for it once more before its 408.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, cast

import msgspec
from hypercorn.typing import (
    ASGIReceiveCallable,
    ASGIReceiveEvent,
    ASGISendCallable,
    HTTPScope,
)
from werkzeug.http import parse_options_header
from werkzeug.sansio.utils import get_host

from app.auth import bearer_token
from app.events import Kind, PayloadError, validate_channel
from app.urls import host_allowed
from app.web import fastpath
from app.web.body import NTFY_HEADERS, NTFY_REFUSED
from app.web.errors import RateLimited
from app.web.params import decode_json
from app.web.runtime import Site
from app.web.security import Guard

ROUTE = "/api/channels/<channel>/events"
PREFIX, SUFFIX = ROUTE.split("<channel>")
FAILED = "pulseboard.publish_error"
JSON = "application/json"
JSON_BYTES = JSON.encode()
NTFY_NAMES = (*NTFY_HEADERS, *NTFY_REFUSED)
UNUSUAL = frozenset(
    name.encode()
    for name in (
        "origin", "sec-fetch-site", "cookie", "hx-request", "expect", "transfer-encoding",
        *NTFY_NAMES, *(f"x-{name}" for name in NTFY_NAMES),
    )
)  # fmt: skip
ANSWER_HEADERS = (  # what Quart's 201 carries: its own two, then the security headers
    (b"content-type", JSON_BYTES),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)

ASGIApp = Any  # (scope, receive, send) -> awaitable; hypercorn.typing's is a Union


@dataclass(frozen=True, slots=True)
class PlainPost:
    """The parts of a publish request the lean path can answer."""

    channel: str
    host: str
    authorization: str | None
    length: int
    client: str


def plain_post(scope: HTTPScope) -> PlainPost | None:
    """The request as a :class:`PlainPost`, or None when it is anything else (Quart's to answer).

    Plain: ``POST`` to the publish route, no query string, a JSON content
    type, a ``Content-Length``, and none of the headers that change the
    answer (:data:`UNUSUAL`: ``Origin``, cookies, ntfy's, htmx's...).
    """
    if scope["method"] != "POST" or scope["query_string"] or scope.get("root_path"):
        return None
    path = scope["path"]
    channel = path[len(PREFIX) : -len(SUFFIX)]
    if not (path.startswith(PREFIX) and path.endswith(SUFFIX) and channel and "/" not in channel):
        return None
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in UNUSUAL:
            return None
        found.setdefault(name, value)  # the first of a repeated header, as werkzeug reads it
    length = found.get(b"content-length", b"")
    if not (_is_json(found.get(b"content-type")) and length.isdigit() and b"host" in found):
        return None
    authorization = found.get(b"authorization")
    client = scope.get("client")
    return PlainPost(
        channel=channel,
        host=found[b"host"].decode("latin-1"),
        authorization=authorization.decode("latin-1") if authorization is not None else None,
        length=int(length),
        client=client[0] if client else "-",
    )


def _is_json(content_type: bytes | None) -> bool:
    """True when werkzeug's ``mimetype`` of this ``Content-Type`` is JSON's."""
    if content_type == JSON_BYTES:
        return True
    return content_type is not None and (
        parse_options_header(content_type.decode("latin-1"))[0].lower() == JSON
    )


class LeanPublish:
    """The ASGI handler for every ``POST``: a plain one published here, the rest to ``fallback``."""

    def __init__(self, site: Site, guard: Guard, fallback: ASGIApp, lean_answer: bool) -> None:
        self.site = site
        self.guard = guard
        self.fallback = fallback
        self.lean_answer = lean_answer  # fastpath.answer: the 201 in one write
        server = site.settings.server
        self.max_body_bytes = server.max_body_bytes
        self.body_timeout_s = server.body_timeout

    async def __call__(
        self, scope: HTTPScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        post = plain_post(scope)
        caller = self._caller(scope, post) if post is not None else None
        kind = await self._kind(post.channel) if post is not None and caller is not None else None
        if post is None or caller is None or kind is None:
            await self.fallback(scope, receive, send)
            return
        seen: list[ASGIReceiveEvent] = []
        body = await self._body(post, kind, receive, seen)
        if seen and seen[-1]["type"] != "http.request":
            return  # the client left
        payload = _payload(kind, body) if body is not None else None
        if payload is None:
            await self.fallback(scope, _replay(seen, receive), send)
            return
        error = await self._publish(post.channel, kind, caller, payload, send)
        if error is not None:
            failed = cast(HTTPScope, {**scope, FAILED: error})
            await self.fallback(failed, _replay(seen, receive), send)

    def _caller(self, scope: HTTPScope, post: PlainPost) -> str | None:
        """The rate-limit key of an allowed caller; None when Quart must answer (or refuse)."""
        host = get_host(scope["scheme"], post.host, scope.get("server"))
        if not host_allowed(host, self.guard.hosts):
            return None
        authority = self.site.authority
        if not authority.enabled:
            return post.client
        token = bearer_token(post.authorization)
        if token is None or self.guard.throttle.wait_s(post.client) > 0:
            return None
        grant = authority.grant_for(token)
        if grant is None or (authority.publish_required and not grant.can_publish(post.channel)):
            return None
        return grant.id

    async def _kind(self, channel: str) -> Kind | None:
        """The existing channel's kind, when the API publishes it and it has no form."""
        try:
            validate_channel(channel)
            name = await self.site.broker.kind_of(channel)
            kind = self.site.kinds.get(name) if name is not None else None
        except Exception:  # an invalid name, an unreachable broker: Quart says which
            return None
        if kind is None or not kind.external_publish or kind.view.form is not None:
            return None
        return kind

    async def _body(
        self, post: PlainPost, kind: Kind, receive: ASGIReceiveCallable, seen: list[Any]
    ) -> bytes | None:
        """The whole body; None: Quart's to read (too large, too slow) or the client left."""
        limit = self.site.settings.limits.body_bytes.get(kind.name, self.max_body_bytes)
        if post.length > min(limit, self.max_body_bytes):
            return None
        deadline = None  # the loop's clock only when a read must wait (Python 3.11: a getpid)
        while True:
            if fastpath.queued(receive):
                message = await receive()
            else:
                if deadline is None:
                    deadline = asyncio.get_running_loop().time() + self.body_timeout_s
                try:
                    async with asyncio.timeout_at(deadline):
                        message = await receive()
                except TimeoutError:
                    return None
            seen.append(message)
            if message["type"] != "http.request":
                return None
            if not message.get("more_body", False):
                break
        body = b"".join(cast(bytes, m.get("body", b"")) for m in seen)
        return body if len(body) == post.length else None

    async def _publish(
        self, channel: str, kind: Kind, caller: str, payload: dict[str, Any], send: ASGISendCallable
    ) -> Exception | None:
        """Charge the budget, publish and answer 201; the error for Quart to answer instead."""
        wait_s = self.site.publish_limiter.acquire(caller)
        if wait_s > 0:
            return RateLimited(wait_s)
        try:
            event = await self.site.publish_valid(channel, kind.name, payload)
        except Exception as error:  # Quart's error handlers answer it (and log the unexpected)
            return error
        answer = msgspec.json.encode({"id": event.id})
        length = (b"content-length", b"%d" % len(answer))
        headers = [ANSWER_HEADERS[0], length, *ANSWER_HEADERS[1:]]
        if not (self.lean_answer and await fastpath.answer(send, 201, headers, answer)):
            await send({"type": "http.response.start", "status": 201, "headers": headers})
            await send({"type": "http.response.body", "body": answer, "more_body": False})
        self.site.count_request(ROUTE, 201)
        return None


def _payload(kind: Kind, body: bytes) -> dict[str, Any] | None:
    """The validated payload of a JSON body, as the publish route reads it; None if refused."""
    try:
        decoded = decode_json(body.decode(), "body")
        return kind.validate(decoded) if isinstance(decoded, dict) else None
    except (PayloadError, UnicodeDecodeError):
        return None


def _replay(seen: list[ASGIReceiveEvent], receive: ASGIReceiveCallable) -> ASGIReceiveCallable:
    """``receive`` that gives the messages already read first."""
    pending = list(seen)

    async def replayed() -> ASGIReceiveEvent:
        return pending.pop(0) if pending else await receive()

    return replayed
