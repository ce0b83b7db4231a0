"""The JSON API: publish, list channels, read history.

``POST /api/channels/<channel>/events`` takes a JSON payload, form fields (the
chat form) or a plain-text body, plus ntfy's headers on notify channels
(:mod:`app.web.body` reads them all). An
``application/x-ndjson`` body is a batch, one payload per line, for
high-rate producers: all lines are validated before any is published.
"""

from __future__ import annotations

import time
from typing import Any, cast
from urllib.parse import parse_qsl

import msgspec
from quart import Blueprint, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from app.events import Kind, PayloadError, validate_channel
from app.web.body import FORM, body_payload, header_fields, merge_fields
from app.web.dashboard import form_response
from app.web.errors import RateLimited, error_response
from app.web.lean_publish import FAILED
from app.web.params import check_known, decode_json, parse_since, whole_number
from app.web.runtime import Site, current_runtime
from app.web.security import check_publish, check_read, current_grant, may_read

blueprint = Blueprint("api", __name__, url_prefix="/api")

DEFAULT_HISTORY_LIMIT = 100
DEFAULT_CHANNELS_LIMIT = 100
MAX_CHANNELS_LIMIT = 1000
CHANNELS_PARAMETERS = frozenset({"limit", "after"})
HISTORY_PARAMETERS = frozenset({"limit", "after", "since"})
NDJSON = "application/x-ndjson"
MAX_PARSED_FIELDS = 1000  # the chat form has two; parse no further to show them again


@blueprint.post("/channels/<channel>/events")
async def publish(channel: str) -> Response:
    """Publish one event (or an NDJSON batch); ``201 {"id": ...}``."""
    failed = cast(Exception | None, request.scope.get(FAILED))
    if failed is not None:
        raise failed  # the lean path's refusal or publish error, for Quart to answer
    runtime: Site = current_runtime()
    validate_channel(channel)
    refusal = check_publish(channel)
    if refusal is not None:
        return refusal
    kind = runtime.kinds.get(await runtime.broker.kind_of(channel) or "notify")
    if not kind.external_publish:
        return error_response(
            409, f"channel {channel!r} is a {kind.name} channel: only its source publishes there"
        )
    if request.mimetype == NDJSON:
        check_known(request.args.keys(), frozenset())
        payloads = _validate_batch(kind, await _read_ndjson(runtime, kind))
        _take_rate(runtime, kind, len(payloads))
        ids = [e.id for e in await runtime.publish_valid_many(channel, kind.name, payloads)]
        return _created({"ids": ids})
    if kind.view.form is not None and request.headers.get("HX-Request") == "true":
        return await _publish_form(runtime, channel, kind)
    payload = kind.validate(await _read_payload(runtime, kind))
    _take_rate(runtime, kind, 1)
    event = await runtime.publish_valid(channel, kind.name, payload)
    return _created({"id": event.id})


@blueprint.route("/ntfy/<channel>", methods=["POST", "PUT"])
async def ntfy_publish(channel: str) -> Response:
    """ntfy's shape, ``POST|PUT /<topic>``: an ntfy client whose server is ``<url>/api/ntfy``."""
    return await publish(channel)


async def _publish_form(runtime: Site, channel: str, kind: Kind) -> Response:
    """A panel's htmx form (chat): answered with the form itself, emptied or showing the error."""
    fields = _form_as_posted(_decode(await _body()))
    try:
        payload = kind.validate(await _read_payload(runtime, kind))
        _take_rate(runtime, kind, 1)
    except PayloadError as error:
        return await form_response(channel, kind.name, fields, status=400, error=str(error))
    except RateLimited as limited:
        message = f"Slow down: try again in {limited.retry_after_s} s."
        response = await form_response(channel, kind.name, fields, status=429, error=message)
        response.headers["Retry-After"] = str(limited.retry_after_s)
        return response
    await runtime.publish_valid(channel, kind.name, payload)
    return await form_response(channel, kind.name, fields, status=201)


def _take_rate(runtime: Site, kind: Kind, count: int) -> None:
    """Charge the publish budget (and chat's, for kinds with a form); RateLimited when spent."""
    grant = current_grant()
    caller = grant.id if grant is not None else (request.remote_addr or "-")
    limiters = [runtime.publish_limiter]
    if kind.view.form is not None:
        limiters.append(runtime.chat_limiter)
    for limiter in limiters:
        wait_s = limiter.acquire(caller, cost=count)
        if wait_s > 0:
            raise RateLimited(wait_s)


def _created(body: dict[str, Any]) -> Response:
    return Response(msgspec.json.encode(body), status=201, content_type="application/json")


def _validate_batch(kind: Kind, items: list[Any]) -> list[dict[str, Any]]:
    payloads = []
    for number, item in enumerate(items, start=1):
        try:
            payloads.append(kind.validate(item))
        except PayloadError as error:
            raise PayloadError(f"events[{number}].{error.field}", error.message) from None
    return payloads


async def _read_ndjson(runtime: Site, kind: Kind) -> list[Any]:
    """A batch: one JSON payload per line, all validated before any is published."""
    lines = _decode(await _body()).splitlines()
    limit = _body_limit(runtime, kind)
    payloads = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if len(line.encode()) > limit:
            raise RequestEntityTooLarge(f"line {number} is over the {limit}-byte {kind.name} limit")
        payloads.append(decode_json(line, f"line {number}"))
    if not payloads:
        raise PayloadError("body", "no events in the batch")
    return payloads


def _body_limit(runtime: Site, kind: Kind) -> int:
    limits = runtime.settings.limits.body_bytes
    return limits.get(kind.name, runtime.settings.server.max_body_bytes)


async def _read_payload(runtime: Site, kind: Kind) -> dict[str, Any]:
    raw = await _body()
    limit = _body_limit(runtime, kind)
    if len(raw) > limit:
        raise RequestEntityTooLarge(f"a {kind.name} event body is at most {limit} bytes")
    from_headers = header_fields(kind, request.headers, request.args)
    max_fields = runtime.settings.limits.form_fields
    payload = body_payload(kind, request.mimetype, _decode(raw), max_fields)
    return merge_fields(payload, from_headers)


def _form_as_posted(text: str) -> dict[str, str]:
    """A panel form's fields as posted, to show them again with the error."""
    if request.mimetype != FORM:
        return {}
    try:
        return dict(parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_PARSED_FIELDS))
    except ValueError:  # parse_qsl's "Max number of fields exceeded"
        return {}


async def _body() -> bytes:
    return cast(bytes, await request.get_data(as_text=False))


def _decode(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise PayloadError("body", "not valid UTF-8") from None


@blueprint.get("/channels")
async def channels() -> Response:
    """A page of channels, sorted by name, with kind, subscribers, last id and retained count.

    ``limit`` (default 100, at most 1000) and ``after`` (a channel name) page;
    ``next`` is the ``after`` of the next page, null on the last one.
    """
    runtime: Site = current_runtime()
    check_known(request.args.keys(), CHANNELS_PARAMETERS)
    limit = _limit(request.args.get("limit"), MAX_CHANNELS_LIMIT, DEFAULT_CHANNELS_LIMIT)
    after = request.args.get("after")
    if after is not None:
        validate_channel(after, field="after")
    page = runtime.broker.channels(after, limit + 1, lambda name: may_read(runtime, name))
    listing = [info.as_json_dict() for info in page[:limit]]
    next_after = page[limit - 1].name if len(page) > limit else None
    return jsonify({"channels": listing, "next": next_after})


@blueprint.get("/channels/<channel>/events")
async def history(channel: str) -> Response:
    """Retained events after ``after`` (oldest first); ``gap`` when ``after`` is unknown.

    ``since`` (a duration or a UNIX time) starts at the first event at or after that time.
    """
    runtime: Site = current_runtime()
    validate_channel(channel)
    check_known(request.args.keys(), HISTORY_PARAMETERS)
    since_text = request.args.get("since")
    since = parse_since(since_text, time.time()) if since_text is not None else None
    refusal = check_read([channel])
    if refusal is not None:
        return refusal
    if await runtime.broker.kind_of(channel) is None:
        return error_response(404, f"no channel {channel!r}", {"channel": channel})
    limit = _limit(
        request.args.get("limit"), runtime.settings.limits.history_limit, DEFAULT_HISTORY_LIMIT
    )
    after = request.args.get("after") or None
    page = await runtime.broker.history(channel, after, limit, since)
    events = [event.as_json_dict() for event in page.events]
    return jsonify({"events": events, "gap": page.gap})


def _limit(text: str | None, maximum: int, default: int) -> int:
    if text is None:
        return min(default, maximum)
    return whole_number(text, "limit", 1, maximum)
