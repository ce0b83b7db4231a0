"""The JSON API: publish, list channels, read history.

``POST /api/channels/<channel>/events`` takes a JSON payload, form fields (the
chat form) or a plain-text body. As ntfy does, a form or text body that does
not carry the kind's fields becomes the kind's ``form_field`` (a notify
``message``): ``curl -d "deploy 42 done"`` sends a form content type. An
``application/x-ndjson`` body is a batch, one payload per line, for
high-rate producers: all lines are validated before any is published.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import parse_qsl

import msgspec
from quart import Blueprint, Response, jsonify, request

from app.events import Kind, PayloadError, validate_channel
from app.runtime import Runtime
from app.web.errors import error_response
from app.web.runtime import current_runtime

blueprint = Blueprint("api", __name__, url_prefix="/api")

DEFAULT_HISTORY_LIMIT = 100
NDJSON = "application/x-ndjson"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


@blueprint.post("/channels/<channel>/events")
async def publish(channel: str) -> Response:
    """Publish one event; ``201 {"id": ...}``."""
    runtime: Runtime = current_runtime()
    validate_channel(channel)
    kind_name = await runtime.broker.kind_of(channel) or "notify"
    kind = runtime.kinds.get(kind_name)
    if not kind.external_publish:
        return error_response(
            409, f"channel {channel!r} is a {kind.name} channel: only its source publishes there"
        )
    if request.mimetype == NDJSON:
        payloads = _validate_batch(kind, await _read_ndjson())
        ids = [(await runtime.broker.publish(channel, kind.name, p)).id for p in payloads]
        return _created({"ids": ids})
    payload = kind.validate(await _read_payload(kind))
    event = await runtime.broker.publish(channel, kind.name, payload)
    return _created({"id": event.id})


def _created(body: dict[str, Any]) -> Response:
    response = jsonify(body)
    response.status_code = 201
    return response


def _validate_batch(kind: Kind, items: list[Any]) -> list[dict[str, Any]]:
    payloads = []
    for number, item in enumerate(items, start=1):
        try:
            payloads.append(kind.validate(item))
        except PayloadError as error:
            raise PayloadError(f"events[{number}].{error.field}", error.message) from None
    return payloads


async def _read_ndjson() -> list[Any]:
    """A batch: one JSON payload per line, all validated before any is published."""
    lines = _decode(await _body()).splitlines()
    payloads = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            payloads.append(msgspec.json.decode(line))
        except msgspec.DecodeError as error:
            raise PayloadError(f"line {number}", f"not valid JSON: {error}") from None
    if not payloads:
        raise PayloadError("body", "no events in the batch")
    return payloads


async def _read_payload(kind: Kind) -> dict[str, Any]:
    mimetype = request.mimetype
    raw = await _body()
    if mimetype == "application/json":
        try:
            payload = msgspec.json.decode(raw)
        except msgspec.DecodeError as error:
            raise PayloadError("body", f"not valid JSON: {error}") from None
        if not isinstance(payload, dict):
            raise PayloadError("body", "a JSON object is required")
        return payload
    text = _decode(raw)
    if mimetype in FORM_TYPES:
        fields = await _form_fields(mimetype, text)
        schema_fields = set(kind.schema.__struct_fields__)
        if fields and set(fields) <= schema_fields:
            return _with_lists(fields, kind)
    if kind.form_field is None:
        raise PayloadError("body", f"send the {kind.name} fields as JSON or form fields")
    if not text.strip():
        raise PayloadError(kind.form_field, "required")
    return {kind.form_field: text}


async def _body() -> bytes:
    return cast(bytes, await request.get_data(as_text=False))


def _decode(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise PayloadError("body", "not valid UTF-8") from None


async def _form_fields(mimetype: str, text: str) -> dict[str, str]:
    if mimetype == "multipart/form-data":
        form = await request.form
        return dict(form.items())
    return dict(parse_qsl(text, keep_blank_values=True))


def _with_lists(fields: dict[str, str], kind: Kind) -> dict[str, Any]:
    """Form values are strings: ``tags=a,b`` becomes a list where the schema wants one."""
    payload: dict[str, Any] = dict(fields)
    if "tags" in payload and "tags" in kind.schema.__struct_fields__:
        payload["tags"] = [tag.strip() for tag in payload["tags"].split(",") if tag.strip()]
    return payload


@blueprint.get("/channels")
async def channels() -> Response:
    """Every channel with kind, subscriber count, last id and retained count."""
    runtime: Runtime = current_runtime()
    return jsonify({"channels": [info.as_json_dict() for info in runtime.broker.channels()]})


@blueprint.get("/channels/<channel>/events")
async def history(channel: str) -> Response:
    """Retained events after ``after`` (oldest first); ``gap`` when ``after`` is unknown."""
    runtime: Runtime = current_runtime()
    validate_channel(channel)
    if await runtime.broker.kind_of(channel) is None:
        return error_response(404, f"no channel {channel!r}", {"channel": channel})
    limit = _limit(request.args.get("limit"), runtime.settings.limits.history_limit)
    after = request.args.get("after") or None
    page = await runtime.broker.history(channel, after, limit)
    events = [event.as_json_dict() for event in page.events]
    return jsonify({"events": events, "gap": page.gap})


def _limit(text: str | None, maximum: int) -> int:
    if text is None:
        return min(DEFAULT_HISTORY_LIMIT, maximum)
    if not text.isdigit() or not 1 <= int(text) <= maximum:
        raise PayloadError("limit", f"expected a whole number from 1 to {maximum}")
    return int(text)
