"""``POST /api/channels/<channel>/acks``: acknowledge an alert (the dashboard's htmx form).

The body names the alert by its ``key`` (form field or JSON). The route finds
the newest notification with that key in the channel's history and, when it
is an open alert, publishes its acknowledgement (app/acks.py) on the same
channel: every open dashboard re-renders the row collapsed. Acknowledging a
closed alert again changes nothing (200). Acknowledging is publishing: the
same publish token, rate limit and cross-site refusal apply.
"""

from __future__ import annotations

from typing import Any

import msgspec
from quart import Blueprint, Response, redirect, request

from app.acks import ack_payload, alert_state, latest_with_key
from app.events import PayloadError, validate_channel
from app.web.errors import RateLimited, error_response
from app.web.params import decode_json
from app.web.runtime import current_runtime
from app.web.security import check_publish, current_grant

blueprint = Blueprint("acks", __name__, url_prefix="/api")
BODY_MAX_BYTES = 4096


@blueprint.post("/channels/<channel>/acks")
async def acknowledge(channel: str) -> Any:
    """Acknowledge the alert ``key`` on ``channel``: ``201 {"id"}``, or 200 when already closed."""
    runtime = current_runtime()
    validate_channel(channel)
    refusal = check_publish(channel)
    if refusal is not None:
        return refusal
    kind = await runtime.broker.kind_of(channel)
    if kind is None:
        return error_response(404, f"no channel {channel!r}", {"channel": channel})
    if kind != "notify":
        return error_response(409, f"channel {channel!r} is a {kind} channel: it has no alerts")
    key = await _read_key()
    page = await runtime.broker.history(channel, None, runtime.settings.broker.history)
    alert = latest_with_key(page.events, key)
    state = None if alert is None else alert_state(alert.data)
    if alert is None or state is None:
        return error_response(404, f"no alert with key {key!r} on {channel!r}", {"field": "key"})
    if state == "open":
        _take_rate()
        payload = runtime.kinds.get("notify").validate(ack_payload(alert.data))
        event = await runtime.publish_valid(channel, "notify", payload)
        return _answer(channel, {"id": event.id, "state": "acknowledged"}, 201)
    return _answer(channel, {"id": alert.id, "state": state}, 200)


async def _read_key() -> str:
    raw = await request.get_data(as_text=False)
    if len(raw) > BODY_MAX_BYTES:
        raise PayloadError("body", f"at most {BODY_MAX_BYTES} bytes")
    if request.mimetype == "application/json":
        fields = decode_json(raw, "body")
        if not isinstance(fields, dict):
            raise PayloadError("body", "a JSON object is required")
    else:
        fields = (await request.form).to_dict()
    unknown = sorted(set(fields) - {"key"})
    if unknown:
        raise PayloadError(unknown[0], f"unknown field (only key is accepted): {unknown}")
    key = fields.get("key")
    if not isinstance(key, str) or not 1 <= len(key) <= 100:
        raise PayloadError("key", "required: the alert's key, 1 to 100 characters")
    return key


def _take_rate() -> None:
    runtime = current_runtime()
    grant = current_grant()
    caller = grant.id if grant is not None else (request.remote_addr or "-")
    wait_s = runtime.publish_limiter.acquire(caller, cost=1)
    if wait_s > 0:
        raise RateLimited(wait_s)


def _answer(channel: str, body: dict[str, str], status: int) -> Any:
    """JSON for programs and htmx; a plain browser form post goes back to the channel's page."""
    is_form = request.mimetype == "application/x-www-form-urlencoded"
    if is_form and request.headers.get("HX-Request") != "true":
        return redirect(f"/channels/{channel}", 303)
    return Response(msgspec.json.encode(body), status=status, content_type="application/json")
