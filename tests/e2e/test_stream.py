"""The stream's delivery rules (DESIGN section 5), one test per rule, against a real server."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.support.server import ServerProcess
from tests.support.sse_client import SSEStream


async def publish(server: ServerProcess, channel: str, message: str) -> str:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{server.url}/api/channels/{channel}/events", json={"message": message}
        )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def publish_batch(server: ServerProcess, channel: str, messages: list[str]) -> list[str]:
    body = "\n".join(json.dumps({"message": m}) for m in messages)
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            f"{server.url}/api/channels/{channel}/events",
            content=body,
            headers={"Content-Type": "application/x-ndjson"},
        )
    assert response.status_code == 201, response.text
    return list(response.json()["ids"])


def messages(events: list) -> list[str]:
    return [json.loads(event.data)["data"]["message"] for event in events]


async def test_headers_retry_first_then_live_event_with_id(server: ServerProcess) -> None:
    async with SSEStream(f"{server.url}/events?channel=t.basic") as stream:
        assert stream.response is not None
        assert stream.response.status_code == 200
        headers = stream.response.headers
        assert headers["content-type"] == "text/event-stream; charset=utf-8"
        assert headers["cache-control"] == "no-cache"
        assert headers["x-accel-buffering"] == "no"
        assert "content-length" not in headers
        await stream.wait_for(lambda: stream.parser.retry is not None)
        assert 1500 <= stream.parser.retry < 3000  # retry_ms, jittered up to twice it
        event_id = await publish(server, "t.basic", "deploy 42 done")
        event = await stream.next_event()
    assert event.event == "t.basic"
    assert event.id == event_id
    body = json.loads(event.data)
    assert set(body) == {"id", "channel", "kind", "time", "data"}
    assert body["data"] == {"message": "deploy 42 done", "level": "info"}
    assert body["kind"] == "notify"


async def test_idle_stream_gets_ping_comments(server: ServerProcess) -> None:
    async with SSEStream(f"{server.url}/events?channel=t.idle") as stream:
        await stream.wait_for(lambda: stream.parser.comments.count("ping") >= 2, within=15)


async def test_resume_with_last_event_id_header_gets_exactly_the_missed_events(
    server: ServerProcess,
) -> None:
    first = await publish(server, "t.resume", "one")
    await publish(server, "t.resume", "two")
    await publish(server, "t.resume", "three")
    headers = {"Last-Event-ID": first}
    async with SSEStream(f"{server.url}/events?channel=t.resume", headers) as stream:
        replayed = await stream.events(2)
        await publish(server, "t.resume", "four")
        live = await stream.next_event()
    assert messages([*replayed, live]) == ["two", "three", "four"]


async def test_resume_by_query_parameter_and_the_header_wins(server: ServerProcess) -> None:
    first = await publish(server, "t.query", "one")
    second = await publish(server, "t.query", "two")
    await publish(server, "t.query", "three")
    url = f"{server.url}/events?channel=t.query&last_event_id={first}"
    async with SSEStream(url) as stream:
        assert messages(await stream.events(2)) == ["two", "three"]
    async with SSEStream(url, {"Last-Event-ID": second}) as stream:
        assert messages(await stream.events(1)) == ["three"]
        with pytest.raises(TimeoutError):
            await stream.next_event(within=0.5)


async def test_unknown_epoch_gets_gap_then_retained_history(server: ServerProcess) -> None:
    await publish(server, "t.gap", "kept")
    headers = {"Last-Event-ID": "deadbeef-7"}
    async with SSEStream(f"{server.url}/events?channel=t.gap", headers) as stream:
        gap = await stream.next_event()
        history = await stream.next_event()
    assert gap.event == "gap"
    assert json.loads(gap.data) == {"channels": ["t.gap"]}
    assert messages([history]) == ["kept"]


async def test_trimmed_cursor_gets_gap(start_server) -> None:
    server = start_server({"broker": {"history": 3}})
    ids = await publish_batch(server, "t.trim", [f"m{i}" for i in range(6)])
    headers = {"Last-Event-ID": ids[0]}
    async with SSEStream(f"{server.url}/events?channel=t.trim", headers) as stream:
        gap = await stream.next_event()
        retained = await stream.events(3)
    assert gap.event == "gap"
    assert messages(retained) == ["m3", "m4", "m5"]


async def test_fresh_json_connect_is_live_only_unless_history_is_asked(
    server: ServerProcess,
) -> None:
    await publish_batch(server, "t.fresh", ["a", "b", "c"])
    async with SSEStream(f"{server.url}/events?channel=t.fresh") as stream:
        await stream.wait_for(lambda: stream.parser.retry is not None)
        await publish(server, "t.fresh", "d")
        assert messages([await stream.next_event()]) == ["d"]
    async with SSEStream(f"{server.url}/events?channel=t.fresh&history=2") as stream:
        assert messages(await stream.events(2)) == ["c", "d"]


async def test_pattern_stream_follows_channels_created_later_in_publish_order(
    server: ServerProcess,
) -> None:
    async with SSEStream(f"{server.url}/events?channel=t.pat.*") as stream:
        await stream.wait_for(lambda: stream.parser.retry is not None)
        await publish(server, "t.pat.a", "1")
        await publish(server, "t.pat.b", "2")
        await publish(server, "t.pat.a", "3")
        await publish(server, "t.other", "not me")
        received = await stream.events(3)
    assert messages(received) == ["1", "2", "3"]
    assert [event.event for event in received] == ["t.pat.a", "t.pat.b", "t.pat.a"]


async def test_filter_q_and_level(server: ServerProcess) -> None:
    url = f"{server.url}/events?channel=t.filter&q=disk%7Cmemory&level=warn"
    async with SSEStream(url) as stream:
        await stream.wait_for(lambda: stream.parser.retry is not None)
        async with httpx.AsyncClient() as client:
            for message, level in [
                ("disk full", "error"),
                ("disk fine", "info"),
                ("cpu hot", "error"),
                ("memory low", "warning"),
            ]:
                response = await client.post(
                    f"{server.url}/api/channels/t.filter/events",
                    json={"message": message, "level": level},
                )
                assert response.status_code == 201
        assert messages(await stream.events(2)) == ["disk full", "memory low"]


async def test_payload_full_of_line_ends_arrives_as_one_intact_event(
    server: ServerProcess,
) -> None:
    nasty = "a\r\nb\rc\n\nid: forged\nevent: gap\ndata: x\n\n\r\r\nend"
    async with SSEStream(f"{server.url}/events?channel=t.crlf") as stream:
        await stream.wait_for(lambda: stream.parser.retry is not None)
        await publish(server, "t.crlf", nasty)
        await publish(server, "t.crlf", "next")
        first, second = await stream.events(2)
    assert first.event == "t.crlf"
    assert messages([first, second]) == [nasty, "next"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "channel"),
        ("channel=Bad.Name", "channel"),
        ("channel=gap", "channel"),
        ("channel=a..b", "channel"),
        ("channel=ok&format=xml", "format"),
        ("channel=ok&q=(unclosed", "q"),
        ("channel=ok&level=loud", "level"),
        ("channel=ok&history=-1", "history"),
        ("channel=ok&history=lots", "history"),
    ],
)
async def test_bad_parameters_are_400_before_the_stream(
    server: ServerProcess, query: str, field: str
) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{server.url}/events?{query}")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["detail"]["field"] == field


@pytest.mark.parametrize(
    "cursor",
    ["x" * 8192, "abc\x01def", "\x7f", "zz-99999999999999999999", "ffffffff-1", "-", "1-"],
)
async def test_hostile_last_event_id_gets_gap_or_400_never_500(
    server: ServerProcess, cursor: str
) -> None:
    await publish(server, "t.hostile", "x")
    async with httpx.AsyncClient() as client:
        try:
            async with client.stream(
                "GET",
                f"{server.url}/events?channel=t.hostile",
                headers={"Last-Event-ID": cursor},
                timeout=5,
            ) as response:
                status = response.status_code
                first = b""
                if status == 200:
                    async for chunk in response.aiter_raw():
                        first += chunk
                        if b"event: gap" in first:
                            break
        except httpx.LocalProtocolError:
            return  # httpx itself refuses to send the header: nothing reached the server
    assert status in (200, 400, 431)
    if status == 200:
        assert b"event: gap" in first


async def test_regex_that_backtracks_catastrophically_returns_promptly(
    server: ServerProcess,
) -> None:
    url = f"{server.url}/events?channel=t.redos&q=(a%2B)%2B%24"
    async with SSEStream(url) as stream:
        await stream.wait_for(lambda: stream.parser.retry is not None)
        await publish(server, "t.redos", "a" * 3900 + "!")
        await publish(server, "t.redos", "aaaa")
        assert messages([await stream.next_event()]) == ["aaaa"]


async def test_history_to_live_splice_under_load(server: ServerProcess) -> None:
    """Resume from the first of 5,000 retained events while 1,000 more are published."""
    ids = [
        event_id
        for block in range(5)
        for event_id in await publish_batch(
            server, "t.splice", [f"h{block}-{i}" for i in range(1000)]
        )
    ]
    headers = {"Last-Event-ID": ids[0]}
    async with SSEStream(f"{server.url}/events?channel=t.splice", headers) as stream:
        live = [
            await publish_batch(server, "t.splice", [f"l{b}-{i}" for i in range(50)])
            for b in range(20)
        ]
        received = await stream.events(4999 + 1000, within=30)
        with pytest.raises(TimeoutError):
            await stream.next_event(within=0.3)
    expected = ids[1:] + [event_id for batch in live for event_id in batch]
    got = [event.id for event in received]
    assert len(set(got)) == 5999
    assert got == expected
    assert len({ids[0], *got}) == 6000


async def test_http_1_0_clients_get_the_stream_without_chunked_framing(
    server: ServerProcess,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /events?channel=t.http10 HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"retry: "), 10)
    head += await asyncio.wait_for(reader.readuntil(b"\n"), 10)
    assert b"chunked" not in head.lower()
    await publish(server, "t.http10", "old client")
    frame = await asyncio.wait_for(reader.readuntil(b"\n\n"), 10)
    writer.close()
    fields = [line for line in frame.split(b"\n") if line and not line.startswith(b":")]
    assert fields[0].startswith(b"id: ")
    assert b'"message":"old client"' in frame
