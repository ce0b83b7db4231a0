"""``server.cors_origins``: a page on a listed origin reads the stream and history with a token."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import ServerFactory
from tests.support.server import ServerProcess

TOKEN = "reader-and-publisher-1"
LISTED = "https://status.example"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def server(start_server: ServerFactory) -> ServerProcess:
    server = start_server(
        {
            "server": {"cors_origins": [LISTED], "heartbeat": 0.5},
            "auth": {"publish_tokens": [TOKEN], "read_tokens": [TOKEN]},
        }
    )
    published = httpx.post(
        f"{server.url}/api/channels/ops.deploys/events", content=b"deploy 1", headers=BEARER
    )
    assert published.status_code == 201, published.text
    return server


@pytest.mark.parametrize(
    "path", ["/events?channel=ops.deploys", "/api/channels/ops.deploys/events", "/api/channels"]
)
def test_a_preflight_from_a_listed_origin_allows_the_token_and_cursor_headers(
    server: ServerProcess, path: str
) -> None:
    response = httpx.options(
        f"{server.url}{path}",
        headers={
            "Origin": LISTED,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, last-event-id",
        },
    )
    assert response.status_code == 204, response.text
    assert response.headers["Access-Control-Allow-Origin"] == LISTED
    allowed = {
        h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")
    }
    assert {"authorization", "last-event-id"} <= allowed
    assert "GET" in response.headers["Access-Control-Allow-Methods"]
    assert "Origin" in response.headers["Vary"]


def test_a_preflight_from_another_origin_is_refused(server: ServerProcess) -> None:
    response = httpx.options(
        f"{server.url}/events?channel=ops.deploys",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response.headers


def test_the_stream_answers_a_listed_origin_with_its_cors_headers(server: ServerProcess) -> None:
    url = f"{server.url}/events?channel=ops.deploys&history=1"
    with httpx.stream("GET", url, headers={"Origin": LISTED, **BEARER}, timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["Access-Control-Allow-Origin"] == LISTED
        assert response.headers["Vary"] == "Origin"
        assert response.headers["Content-Type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data:"):
                assert "deploy 1" in line
                break
    with httpx.stream("GET", url, headers={"Origin": "https://evil.example", **BEARER}) as other:
        assert other.status_code == 200  # CORS is the browser's check; the token is ours
        assert "Access-Control-Allow-Origin" not in other.headers


def test_history_and_its_errors_carry_the_cors_headers(server: ServerProcess) -> None:
    url = f"{server.url}/api/channels/ops.deploys/events"
    response = httpx.get(url, headers={"Origin": LISTED, **BEARER})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == LISTED
    assert [e["data"]["message"] for e in response.json()["events"]] == ["deploy 1"]
    refused = httpx.get(url, headers={"Origin": LISTED})
    assert refused.status_code == 401
    assert refused.headers["Access-Control-Allow-Origin"] == LISTED, "the page can read the 401"
    other = httpx.get(url, headers={"Origin": "https://evil.example", **BEARER})
    assert "Access-Control-Allow-Origin" not in other.headers
    assert other.headers["Vary"] == "Origin"


def test_a_listed_origin_still_may_not_publish(server: ServerProcess) -> None:
    response = httpx.post(
        f"{server.url}/api/channels/ops.deploys/events",
        content=b"from a page elsewhere",
        headers={"Origin": LISTED, **BEARER},
    )
    assert response.status_code == 403
    assert "cross-site" in response.json()["error"]


def test_without_cors_origins_nothing_is_shared(start_server: ServerFactory) -> None:
    server = start_server({})
    response = httpx.options(
        f"{server.url}/api/channels",
        headers={"Origin": LISTED, "Access-Control-Request-Method": "GET"},
    )
    assert "Access-Control-Allow-Origin" not in response.headers
    listing = httpx.get(f"{server.url}/api/channels", headers={"Origin": LISTED})
    assert "Access-Control-Allow-Origin" not in listing.headers
