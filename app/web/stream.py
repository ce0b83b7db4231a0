"""``GET /events``: the SSE stream. Parameters are checked here, before any byte is streamed."""

from __future__ import annotations

import time
from dataclasses import replace

from quart import Blueprint, Response, request
from werkzeug.datastructures import Headers, MultiDict

from app.broker.base import Start
from app.events import KindRegistry, PayloadError, check_cursor_text, validate_pattern
from app.filters import IGNORE_CASE, EventFilter, compile_user_regex, parse_flag, parse_level
from app.linefields import parse_field_filter
from app.settings import LimitsSettings
from app.web.asgi import STREAM_PATH, StreamResponse
from app.web.cors import stream_cors_headers
from app.web.errors import error_response
from app.web.params import check_known, parse_since, whole_number
from app.web.runtime import Site, current_runtime
from app.web.security import check_read
from app.web.streaming.loop import EventStream, StreamRequest

blueprint = Blueprint("stream", __name__)

FORMATS = ("json", "html", "ndjson")
PARAMETERS = frozenset(
    {"channel", "format", "q", IGNORE_CASE, "level", "field", "history", "last_event_id", "since"}
)


def parse_stream_request(
    args: MultiDict[str, str],
    headers: Headers,
    kinds: KindRegistry,
    limits: LimitsSettings,
    client: str,
) -> StreamRequest:
    """Validate ``/events`` parameters; a PayloadError names the bad one."""
    check_known(args.keys(), PARAMETERS)
    patterns = tuple(dict.fromkeys(args.getlist("channel")))
    if not patterns:
        raise PayloadError("channel", "at least one channel=NAME or pattern is required")
    if len(patterns) > limits.channels_per_stream:
        raise PayloadError("channel", f"at most {limits.channels_per_stream} channels per stream")
    for pattern in patterns:
        validate_pattern(pattern)
    fmt = args.get("format", "json")
    if fmt not in FORMATS:
        raise PayloadError("format", f"expected json, ndjson or html, got {fmt!r}")
    if args.get("last_event_id"):
        check_cursor_text(args["last_event_id"])  # a bad one is a 400 even where the header wins
    query = args.get("q") or None
    level = args.get("level") or None
    ignore_case = parse_flag(args.get("ignore_case", ""))
    event_filter = EventFilter(
        kinds,
        pattern=compile_user_regex(query, ignore_case=ignore_case) if query is not None else None,
        level=parse_level(level) if level is not None else None,
        fields=tuple(parse_field_filter(text) for text in args.getlist("field") if text),
    )
    return StreamRequest(
        patterns=patterns,
        format=fmt,
        filter=event_filter,
        start=_parse_start(args, headers, fmt, limits),
        client=client,
    )


def _parse_start(
    args: MultiDict[str, str], headers: Headers, fmt: str, limits: LimitsSettings
) -> Start:
    after = headers.get("Last-Event-ID") or args.get("last_event_id") or None
    if after is not None:
        check_cursor_text(after)
    history = whole_number(args.get("history", "0"), "history", 0, limits.history_limit)
    since_text = args.get("since")
    since = parse_since(since_text, time.time()) if since_text is not None else None
    if since is not None and (fmt == "html" or history):
        raise PayloadError("since", "not with format=html nor with history: give one start")
    return Start(after=after, history=history, snapshot=fmt == "html", since=since)


@blueprint.get(STREAM_PATH)
async def events() -> Response:
    """Open an SSE stream on the requested channels (DESIGN section 5)."""
    runtime: Site = current_runtime()
    client = request.remote_addr or "-"
    stream_request = parse_stream_request(
        request.args, request.headers, runtime.kinds, runtime.settings.limits, client
    )
    stream_request = replace(stream_request, headers=tuple(stream_cors_headers()))
    refusal = check_read(stream_request.patterns)
    if refusal is not None:
        return refusal
    if not runtime.accepting:
        return error_response(503, "shutting down", None, {"Retry-After": "1"})
    limit = runtime.settings.limits.streams_per_client
    if runtime.streams.per_client(client) >= limit:
        return error_response(
            429, f"at most {limit} concurrent streams per client", None, {"Retry-After": "5"}
        )
    stream = EventStream(stream_request, runtime.broker, runtime.renderer, runtime.streams)
    return StreamResponse(stream)
