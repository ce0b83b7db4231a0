"""Schemathesis against a real server: no 5xx, and every answer true to the OpenAPI document.

The document is built as ``GET /openapi.json`` builds it for the server's
settings (tests/web/test_openapi.py checks that the two agree). Two servers:
one without tokens, and one with tokens where the anonymous fuzzer meets
the 401s and sign-in redirects.

Every check runs but ``positive_data_acceptance``: a request can match the
document and still be refused with a documented 400, because what is valid
depends on state the document cannot express (a chat payload is valid for a
chat channel, not for a notify one) or on more than a schema (``q`` must be
a valid RE2 regex).

``/events`` never ends, so its cases are sent here rather than by
Schemathesis (which would read each stream for its whole timeout): status,
headers and the frames up to the first event (or the first heartbeat: the
test server beats every 0.3 s), which are then checked like any other answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from app.events import KindRegistry
from app.settings import LimitsSettings
from app.web.api import NDJSON
from app.web.asgi import STREAM_PATH
from app.web.openapi import openapi_document
from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow

OPEN: dict[str, Any] = {
    "server": {"heartbeat": 0.3},
    "channels": [
        {"name": "ops.deploys", "kind": "notify"},
        {"name": "chat.lobby", "kind": "chat"},
        {"name": "log.app", "kind": "log"},
        {"name": "ticker", "kind": "ticker"},
    ],
}
TOKENS = {**OPEN, "auth": {"read_tokens": ["read-token-1"], "publish_tokens": ["publish-token-1"]}}

MAX_EXAMPLES = 30
TIMEOUT_S = 10.0

schema = schemathesis.openapi.from_dict(openapi_document(KindRegistry(), LimitsSettings()))
schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True, database="none")
schema.config.checks.update(excluded_check_names=["positive_data_acceptance"])


@schemathesis.serializer(NDJSON)
def ndjson_body(context: Any, value: Any) -> bytes:
    """The document describes a batch as an array of payloads; the wire has one per line."""
    items = value if isinstance(value, list) else [value]
    return b"".join(json.dumps(item).encode() + b"\n" for item in items)


@pytest.fixture(scope="module", params=[OPEN, TOKENS], ids=["open", "tokens"])
def fuzzed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server without tokens, then one whose anonymous callers get 401s and sign-in redirects."""
    server = ServerProcess(tmp_path_factory.mktemp("fuzzed"), request.param).start()
    yield server
    server.stop()
    assert "Traceback" not in server.log(), server.log()


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
@pytest.mark.timeout(300)
def test_no_server_error_and_every_answer_matches_the_schema(
    case: Any, fuzzed: ServerProcess
) -> None:
    if case.path == STREAM_PATH:
        case.validate_response(stream_head(case, fuzzed.url))
    else:
        case.call_and_validate(base_url=fuzzed.url, timeout=TIMEOUT_S)


def stream_head(case: Any, base_url: str) -> httpx.Response:
    """The answer to ``case`` with only its first chunk of body when it is a stream."""
    sent = case.as_transport_kwargs(base_url=base_url)
    headers = {name: value.encode("latin-1") for name, value in sent["headers"].items()}
    with httpx.stream(
        sent["method"], sent["url"], params=sent["params"], headers=headers, timeout=TIMEOUT_S
    ) as response:
        content_type = response.headers.get("Content-Type", "")
        if content_type.startswith("application/x-ndjson"):
            head = first_line(response.iter_raw())  # format=ndjson: endless too
        elif content_type.startswith("text/event-stream"):
            head = first_frames(response.iter_raw())
        else:
            response.read()
            return response
    head = httpx.Response(
        response.status_code, headers=response.headers, content=head, request=response.request
    )
    head.elapsed = response.elapsed
    return head


def first_line(chunks: Iterator[bytes]) -> bytes:
    """The first line of an NDJSON stream: an event, a gap, or an idle stream's empty line."""
    received = b""
    for chunk in chunks:
        received += chunk
        if b"\n" in received:
            break
    return received[: received.index(b"\n") + 1] if b"\n" in received else received


def first_frames(chunks: Iterator[bytes]) -> bytes:
    """Complete frames up to the first event with data, or the first heartbeat of an idle stream."""
    received = b""
    for chunk in chunks:
        received += chunk
        if b"data:" in received or b": ping" in received:
            break
    if b"\n\n" in received:
        return received[: received.rfind(b"\n\n") + 2]
    return received[: received.rfind(b"\n") + 1]  # retry: and a heartbeat end in no blank line
