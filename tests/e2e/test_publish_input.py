"""Every way to publish a notification, round-tripped through a real server (issue 16.1)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from python_ntfy import MessagePriority, NtfyClient

from tests.e2e.conftest import ServerFactory
from tests.support.server import ServerProcess
from tests.support.sse_client import SSEStream

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
EXPECTED = {
    "message": "disk 91% full",
    "title": "db-1",
    "level": "warning",
    "priority": 4,
    "tags": ["disk", "db-1"],
    "link": "https://grafana.example/d/db-1",
}
JSON_TEXT = json.dumps(
    {
        "message": "disk 91% full",
        "title": "db-1",
        "priority": "high",
        "tags": ["disk", "db-1"],
        "link": "https://grafana.example/d/db-1",
    }
)
NTFY_HEADERS = {
    "Title": "db-1",
    "Priority": "high",
    "Tags": "disk,db-1",
    "Click": "https://grafana.example/d/db-1",
}
WAYS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "json": (
        "POST",
        "events",
        {"content": JSON_TEXT, "headers": {"Content-Type": "application/json"}},
    ),
    "json sent as a form (curl -d)": ("POST", "events", {"content": JSON_TEXT, "headers": FORM}),
    "form fields, tags repeated": (
        "POST",
        "events",
        {
            "content": "message=disk+91%25+full&title=db-1&priority=4&tags=disk&tags=db-1"
            "&link=https%3A%2F%2Fgrafana.example%2Fd%2Fdb-1",
            "headers": FORM,
        },
    ),
    "text with ntfy headers": (
        "POST",
        "events",
        {"content": "disk 91% full", "headers": {"Content-Type": "text/plain", **NTFY_HEADERS}},
    ),
    "curl -d with X- headers": (
        "POST",
        "events",
        {
            "content": "disk 91% full",
            "headers": {**FORM, **{f"X-{name}": value for name, value in NTFY_HEADERS.items()}},
        },
    ),
    "ntfy's query parameters": (
        "POST",
        "ntfy",
        {
            "content": "disk 91% full",
            "params": {
                "title": "db-1",
                "priority": "high",
                "tags": "disk,db-1",
                "click": "https://grafana.example/d/db-1",
            },
        },
    ),
    "ntfy's path, PUT": ("PUT", "ntfy", {"content": "disk 91% full", "headers": NTFY_HEADERS}),
    "ntfy's path, X-Message": (
        "POST",
        "ntfy",
        {"content": b"", "headers": {"X-Message": "disk 91% full", **NTFY_HEADERS}},
    ),
}


def url(server: ServerProcess, shape: str, channel: str) -> str:
    if shape == "ntfy":
        return f"{server.url}/api/ntfy/{channel}"
    return f"{server.url}/api/channels/{channel}/events"


async def round_trip(
    server: ServerProcess, channel: str, method: str, target: str, request: dict[str, Any]
) -> dict[str, Any]:
    async with SSEStream(f"{server.url}/events?channel={channel}") as stream:
        await stream.wait_for(lambda: stream.parser.retry is not None)
        async with httpx.AsyncClient() as client:
            response = await client.request(method, url(server, target, channel), **request)
        assert response.status_code == 201, response.text
        event = await stream.next_event()
    body = json.loads(event.data)
    assert body["id"] == response.json()["id"]
    return dict(body["data"])


@pytest.mark.parametrize("way", list(WAYS))
async def test_each_way_to_publish_gives_the_same_event(server: ServerProcess, way: str) -> None:
    method, target, request = WAYS[way]
    channel = f"in.way{list(WAYS).index(way)}"
    assert await round_trip(server, channel, method, target, request) == EXPECTED


@pytest.mark.parametrize(
    ("content", "headers", "field"),
    [
        (b"message=x&priorty=5", FORM, "priorty"),
        (b'{"message": "x", "colour": "red"}', FORM, "colour"),
        (b'{"message": "x",}', FORM, "body"),
        (b"x", {"X-Delay": "10m"}, "X-Delay"),
        (b"x", {"Priority": "9"}, "priority"),
        (b'{"message": "x", "title": "a"}', {"Title": "b"}, "title"),
    ],
)
def test_refused_inputs_are_400s_naming_the_field(
    server: ServerProcess, content: bytes, headers: dict[str, str], field: str
) -> None:
    response = httpx.post(
        f"{server.url}/api/channels/in.refused/events", content=content, headers=headers
    )
    assert response.status_code == 400, response.text
    assert response.json()["detail"]["field"] == field
    assert httpx.get(f"{server.url}/api/channels/in.refused/events").status_code == 404


@pytest.mark.parametrize(
    ("channel", "query", "field"),
    [("in.refused", "titel=db-1", "titel"), ("chat.lobby", "title=x", "title")],
)
def test_unknown_query_parameters_on_a_publish_are_a_400(
    server: ServerProcess, channel: str, query: str, field: str
) -> None:
    response = httpx.post(f"{server.url}/api/channels/{channel}/events?{query}", content=b"x")
    assert response.status_code == 400, response.text
    assert response.json()["detail"]["field"] == field


async def test_a_form_of_other_words_is_the_message(server: ServerProcess) -> None:
    request = {"content": "a=b&c=d", "headers": FORM}
    data = await round_trip(server, "in.words", "POST", "events", request)
    assert data == {"message": "a=b&c=d", "level": "info"}


async def test_the_python_ntfy_library_publishes_unchanged(server: ServerProcess) -> None:
    async with SSEStream(f"{server.url}/events?channel=in.library") as stream:
        await stream.wait_for(lambda: stream.parser.retry is not None)
        client = NtfyClient(topic="in.library", server=f"{server.url}/api/ntfy")
        answer = await asyncio.to_thread(
            client.send, "disk 91% full", "db-1", MessagePriority.HIGH, ["disk", "db-1"]
        )
        event = await stream.next_event()
    body = json.loads(event.data)
    assert body["id"] == answer["id"]
    assert body["data"] == {k: v for k, v in EXPECTED.items() if k != "link"}


def test_an_ntfy_token_sent_as_basic_auth_publishes(start_server: ServerFactory) -> None:
    token = "publisher-token-1"
    server = start_server({"auth": {"publish_tokens": [token]}})
    anonymous = NtfyClient(topic="in.token", server=f"{server.url}/api/ntfy")
    with pytest.raises(Exception, match="401"):
        anonymous.send("x")
    client = NtfyClient(topic="in.token", server=f"{server.url}/api/ntfy", auth=token)
    assert client.send("deploy 43 done")["id"]
    wrong = NtfyClient(topic="in.token", server=f"{server.url}/api/ntfy", auth=("me", token))
    with pytest.raises(Exception, match="401"):
        wrong.send("x")
