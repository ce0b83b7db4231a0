"""Reading without a browser (issue 16.2): NDJSON, ``since=``, strict parameters, JSON snapshots."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ServerFactory
from tests.support.server import ServerProcess
from tests.support.sse_client import SSEStream
from tests.support.waiting import wait_until


def publish(server: ServerProcess, channel: str, message: str) -> str:
    response = httpx.post(f"{server.url}/api/channels/{channel}/events", json={"message": message})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def history(server: ServerProcess, channel: str, query: str = "") -> list[dict[str, Any]]:
    response = httpx.get(f"{server.url}/api/channels/{channel}/events?{query}")
    assert response.status_code == 200, response.text
    return list(response.json()["events"])


class LineStream:
    """An NDJSON stream read line by line over a real socket."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines: AsyncIterator[str] = response.aiter_lines()

    async def next_line(self, within: float = 15.0) -> str:
        async with asyncio.timeout(within):
            return await anext(self._lines)

    async def next_object(self, within: float = 15.0) -> dict[str, Any]:
        async with asyncio.timeout(within):
            while not (line := await self.next_line(within)):
                pass  # a heartbeat
        return dict(json.loads(line))


async def open_lines(client: httpx.AsyncClient, url: str) -> LineStream:
    response = await client.send(client.build_request("GET", url), stream=True)
    assert response.status_code == 200, await response.aread()
    return LineStream(response)


async def test_ndjson_lines_are_the_json_formats_objects(server: ServerProcess) -> None:
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None)) as client:
        lines = await open_lines(client, f"{server.url}/events?channel=nd.one&format=ndjson")
        assert lines.response.headers["content-type"] == "application/x-ndjson"
        async with SSEStream(f"{server.url}/events?channel=nd.one") as sse:
            await sse.wait_for(lambda: sse.parser.retry is not None)
            publish(server, "nd.one", 'two\nlines "quoted"')
            as_json = json.loads((await sse.next_event()).data)
        assert await lines.next_object() == as_json
        assert await lines.next_line() == "", "an idle NDJSON stream sends empty lines"
        await lines.response.aclose()


async def test_ndjson_resumes_with_last_event_id_and_reports_gaps(server: ServerProcess) -> None:
    ids = [publish(server, "nd.resume", f"m{n}") for n in range(4)]
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None)) as client:
        url = f"{server.url}/events?channel=nd.resume&format=ndjson&last_event_id={ids[1]}"
        lines = await open_lines(client, url)
        assert [(await lines.next_object())["id"] for _ in range(2)] == ids[2:]
        await lines.response.aclose()
        lines = await open_lines(client, f"{url[: url.index('&last')]}&last_event_id=zz-1")
        gap = await lines.next_object()
        cursor = gap.pop("id")  # where the replay that follows starts: a valid cursor
        assert gap == {"channel": "gap", "kind": "gap", "data": {"channels": ["nd.resume"]}}
        assert cursor.split("-")[0] == ids[0].split("-")[0], "the current epoch"
        assert [(await lines.next_object())["id"] for _ in range(4)] == ids
        await lines.response.aclose()


async def test_since_on_the_stream_and_the_history_api(server: ServerProcess) -> None:
    ids = [publish(server, "nd.since", f"m{n}") for n in range(3)]
    events = history(server, "nd.since")
    since = events[1]["time"]
    assert [e["id"] for e in history(server, "nd.since", f"since={since!r}")] == ids[1:]
    assert [e["id"] for e in history(server, "nd.since", "since=1h")] == ids
    assert history(server, "nd.since", f"since={events[2]['time'] + 3600}") == []
    async with SSEStream(f"{server.url}/events?channel=nd.since&since={since!r}") as stream:
        replayed = await stream.events(2)
    assert [event.id for event in replayed] == ids[1:]
    async with SSEStream(f"{server.url}/events?channel=nd.since&since=10m") as stream:
        assert [event.id for event in await stream.events(3)] == ids


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/events?channel=a.b&sinse=10m", "sinse"),
        ("/events?channel=a.b&format=json&Channel=c.d&x=1", "Channel, x"),
        ("/events?channel=a.b&since=yesterday", "since"),
        ("/events?channel=a.b&since=-5", "since"),
        ("/events?channel=a.b&since=10m&history=5", "since"),
        ("/events?channel=a.b&since=10m&format=html", "since"),
        ("/api/channels/ops.deploys/events?sinse=10m", "sinse"),
        ("/api/channels/ops.deploys/events?since=nan", "since"),
        ("/api/channels?page=2", "page"),
    ],
)
def test_unknown_or_bad_query_parameters_are_a_400_naming_them(
    server: ServerProcess, path: str, field: str
) -> None:
    publish(server, "ops.deploys", "exists")
    with httpx.stream("GET", f"{server.url}{path}", timeout=10) as response:
        assert response.status_code == 400, "a stream opened"
        assert json.loads(response.read())["detail"]["field"] == field


@pytest.mark.slow
async def test_a_fresh_json_connect_gets_the_latest_quote_per_symbol(
    start_server: ServerFactory,
) -> None:
    symbols = ["AAA", "BBB", "CCC"]
    ticker = {"type": "ticker", "channel": "ticker", "symbols": symbols, "interval": 3.0}
    server = start_server({"sources": [ticker]})
    wait_until(lambda: len(history(server, "ticker")) >= 3, "three quotes published", 30)
    before = {event["id"] for event in history(server, "ticker")}
    async with SSEStream(f"{server.url}/events?channel=ticker") as stream:
        first = [json.loads(event.data) for event in await stream.events(3)]
    assert first[0]["id"] in before, "the first event is a quote published before the connect"
    assert sorted(event["data"]["symbol"] for event in first) == symbols
