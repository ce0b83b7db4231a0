"""Disconnects, slow clients and shutdown, against a real server."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import struct

import httpx
import pytest

from tests.support import run_async
from tests.support.server import ServerProcess
from tests.support.sse_client import SSEStream
from tests.support.waiting import wait_until


def subscribers(server: ServerProcess, channel: str) -> int:
    listing = httpx.get(f"{server.url}/api/channels").json()["channels"]
    return next((c["subscribers"] for c in listing if c["name"] == channel), 0)


def raw_stream(server: ServerProcess, channel: str, rcvbuf: int | None = None) -> socket.socket:
    """A client that sends the request and then reads only when told to."""
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect(("127.0.0.1", server.port))
    sock.sendall(f"GET /events?channel={channel} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return sock


def test_connect_disconnect_churn_leaves_no_subscribers_or_files(start_server) -> None:
    server = start_server({"server": {"heartbeat": 0.2}, "limits": {"streams_per_client": 2000}})
    httpx.post(f"{server.url}/api/channels/t.churn/events", content=b"x")
    files_before = server.open_files()
    for cycle in range(1000):
        sock = raw_stream(server, "t.churn")
        sock.recv(200)  # the response has started: the subscription exists
        if cycle % 2:
            # abrupt: RST instead of FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    wait_until(lambda: subscribers(server, "t.churn") == 0, "all subscriptions freed")
    wait_until(lambda: server.open_files() <= files_before + 5, "sockets closed")


@pytest.mark.slow
def test_stalled_reader_is_cut_while_another_gets_everything(start_server) -> None:
    server = start_server(
        {
            "server": {
                "write_timeout": 1.0,
                "max_lag": 100000,
                "heartbeat": 0.5,
                "max_body_bytes": 1 << 20,
            },
            "broker": {"history": 200},
        }
    )
    httpx.post(f"{server.url}/api/channels/t.slow/events", content=b"created")
    stalled = raw_stream(server, "t.slow", rcvbuf=4096)
    stalled.recv(100)

    async def scenario() -> list[str]:
        async with SSEStream(f"{server.url}/events?channel=t.slow") as healthy:
            await healthy.wait_for(lambda: healthy.parser.retry is not None)
            wait_until(lambda: subscribers(server, "t.slow") == 2, "both subscribed")
            rss_before = server.rss_kib()
            big = "x" * 3900
            async with httpx.AsyncClient() as client:
                for batch in range(30):
                    body = "\n".join(
                        json.dumps({"message": f"{batch}-{i} {big}"}) for i in range(100)
                    )
                    response = await client.post(
                        f"{server.url}/api/channels/t.slow/events",
                        content=body,
                        headers={"Content-Type": "application/x-ndjson"},
                    )
                    assert response.status_code == 201
                    # drain as we go so the healthy reader never lags
                    await healthy.events(100, within=10)
            await asyncio.to_thread(
                wait_until, lambda: subscribers(server, "t.slow") == 1, "stalled reader cut", 6
            )
            assert server.rss_kib() - rss_before < 64 * 1024
            return [event.id for event in healthy.parser.events]

    ids = run_async(scenario())
    stalled.close()
    assert len(ids) == len(set(ids)) == 3000
    assert "slow client cut" in server.log()


@pytest.mark.slow
def test_lagging_reader_is_cut_and_resumes_from_history(start_server) -> None:
    """A reader whose socket is full falls behind by max_lag events and is cut.

    Events go straight into the socket while it accepts them, so the reader
    lags only once its socket buffers are full: 3,000 events of 3.9 KB do that.
    """
    server = start_server(
        {
            "server": {"max_lag": 50, "max_body_bytes": 1 << 20, "write_timeout": 60.0},
            "broker": {"history": 5000},
        }
    )
    created = httpx.post(f"{server.url}/api/channels/t.lag/events", content=b"created")
    sock = raw_stream(server, "t.lag", rcvbuf=4096)
    sock.recv(100)
    for batch in range(30):
        body = "\n".join(
            json.dumps({"message": f"m{batch * 100 + i} " + "y" * 3900}) for i in range(100)
        )
        response = httpx.post(
            f"{server.url}/api/channels/t.lag/events",
            content=body,
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert response.status_code == 201
    wait_until(lambda: "reason=lagging" in server.log(), "lagging reader cut")
    wait_until(lambda: subscribers(server, "t.lag") == 0, "its subscription freed")
    sock.close()

    async def resume() -> list[str]:
        headers = {"Last-Event-ID": created.json()["id"]}
        async with SSEStream(f"{server.url}/events?channel=t.lag", headers) as stream:
            events = await stream.events(3000, within=30)
            return [json.loads(e.data)["data"]["message"].split()[0] for e in events]

    assert run_async(resume()) == [f"m{i}" for i in range(3000)]


@pytest.mark.slow
def test_sigterm_with_100_open_streams_ends_them_all_and_exits_cleanly(start_server) -> None:
    """The app ends its own streams on the signal (it does not wait for Hypercorn's grace).

    The bounds are only a safety net; how fast shutdown goes is not judged here.
    """
    server = start_server({"limits": {"streams_per_client": 1000}})

    async def scenario() -> int:
        streams = [SSEStream(f"{server.url}/events?channel=t.bye") for _ in range(100)]
        for stream in streams:
            await stream.__aenter__()
        for stream in streams:
            await stream.wait_for(lambda s=stream: s.parser.retry is not None)
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        for stream in streams:
            await asyncio.wait_for(stream.ended.wait(), 30)
        code = await asyncio.to_thread(server.process.wait, 30)
        for stream in streams:
            await stream.__aexit__(None, None, None)
        return code

    assert run_async(scenario()) == 0
    log = server.log()
    assert "Traceback" not in log
    assert "stopping: ending 100 open streams" in log


def test_access_log_is_written_to_a_file_and_json_logs_parse(start_server, tmp_path) -> None:
    access = tmp_path / "access.log"
    server = start_server({"log": {"access_log": str(access), "format": "json"}})
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    wait_until(lambda: access.exists() and "/healthz" in access.read_text(), "access line")
    with httpx.Client(base_url=server.url) as client:  # the first creates it, the second is lean
        for _ in range(2):
            answer = client.post("/api/channels/logged/events", json={"message": "hi"})
            assert answer.status_code == 201
    posted = '"POST /api/channels/logged/events 1.1" 201'
    wait_until(lambda: access.read_text().count(posted) == 2, "both POSTs' access lines")
    lines = [line for line in server.log().splitlines() if line.startswith("{")]
    assert lines
    assert all(json.loads(line)["level"] for line in lines)
    assert any("started" in json.loads(line)["message"] for line in lines)
