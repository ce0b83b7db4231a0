"""What the fuzzer (tests/e2e/test_fuzz.py) found, one regression test each."""

from __future__ import annotations

import json

import httpx

from tests.support.server import ServerProcess


def test_a_wrong_method_is_a_405_naming_the_allowed_methods(server: ServerProcess) -> None:
    response = httpx.request("TRACE", f"{server.url}/api/channels")
    assert response.status_code == 405
    assert response.json()["error"] == "method not allowed"
    assert {"GET", "HEAD"} <= {m.strip() for m in response.headers["Allow"].split(",")}


def test_a_malformed_last_event_id_parameter_is_a_400_even_beside_the_header(
    server: ServerProcess,
) -> None:
    with httpx.stream(
        "GET",
        f"{server.url}/events",
        params={"channel": "ops.deploys", "last_event_id": "x" * 65},
        headers={"Last-Event-ID": "abc-1"},
    ) as response:
        assert response.status_code == 400  # was 200: the header won, the parameter went unread
        assert json.loads(response.read())["detail"] == {"field": "last_event_id"}
