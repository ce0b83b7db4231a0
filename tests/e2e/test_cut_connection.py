"""A cut stream closes its connection (issue 12.1), against a real server.

The clients here never read: a small receive buffer, a request, then
nothing. What they see once the server gives up on them is the test: the
connection reset (or ended) at once, not megabytes still queued behind a
connection that stays open for as long as the client likes.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ServerFactory
from tests.support.server import ServerProcess
from tests.support.waiting import wait_until

CHANNEL = "ops.deploys"
EVENT_TEXT = "x" * 3900
# What a never-reading client may still find queued on its side once the
# server has aborted: its 4 KiB receive buffer, and a little in flight.
# A connection that is merely ended politely delivers megabytes first.
CLOSED_WITHIN_BYTES = 256 * 1024


def config(**server: Any) -> dict[str, Any]:
    """A notify channel, bodies large enough for the batches below."""
    return {
        "server": {"max_body_bytes": 4 << 20, **server},
        "broker": {"history": 5000},
        "limits": {"streams_per_client": 1000},
        "channels": [{"name": CHANNEL, "kind": "notify"}],
    }


def never_reading_client(server: ServerProcess, http_version: str = "1.1") -> socket.socket:
    """A client that asks for the stream and never reads (SO_RCVBUF 4096)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    request = f"GET /events?channel={CHANNEL} HTTP/{http_version}\r\nHost: 127.0.0.1\r\n\r\n"
    sock.sendall(request.encode())
    return sock


def publish_batches(
    server: ServerProcess, batches: int, per_batch: int = 250, text: str = EVENT_TEXT
) -> None:
    """NDJSON batches of notify events (~4 KB each unless ``text`` says otherwise)."""
    with httpx.Client(timeout=30) as client:
        for batch in range(batches):
            body = "\n".join(
                json.dumps({"message": f"{batch}-{i} {text}"}) for i in range(per_batch)
            )
            response = client.post(
                f"{server.url}/api/channels/{CHANNEL}/events",
                content=body,
                headers={"Content-Type": "application/x-ndjson"},
            )
            assert response.status_code == 201, response.text


def metric(server: ServerProcess, name: str) -> float:
    """The sum of a metric's samples on ``/metrics``."""
    text = httpx.get(f"{server.url}/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


def closed_by_server(sock: socket.socket, within_s: float = 10.0) -> bool:
    """True when the server ended the connection before sending much more.

    Reads what the client holds until EOF or a reset; False when more than
    CLOSED_WITHIN_BYTES arrive first or nothing ends it within ``within_s``.
    """
    sock.settimeout(0.5)
    deadline = time.monotonic() + within_s
    received = 0
    while time.monotonic() < deadline and received <= CLOSED_WITHIN_BYTES:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return True
        except TimeoutError:
            continue
        if not chunk:
            return True
        received += len(chunk)
    return False


@pytest.mark.parametrize("http_version", ["1.1", "1.0"], ids=["lean-path", "quart-path"])
@pytest.mark.parametrize(
    ("reason", "settings"),
    [
        ("lagging", {"max_lag": 200, "write_timeout": 60.0}),
        ("write_timeout", {"max_lag": 100_000, "write_timeout": 0.5}),
    ],
)
def test_a_cut_client_that_never_reads_loses_its_connection_at_once(
    start_server: ServerFactory, http_version: str, reason: str, settings: dict[str, Any]
) -> None:
    server = start_server(config(**settings))
    sock = never_reading_client(server, http_version)
    wait_until(lambda: metric(server, "pulseboard_streams") == 1, "the stream open")
    publish_batches(server, 4)
    wait_until(
        lambda: metric(server, "pulseboard_slow_client_disconnects") >= 1, "the client cut", 15
    )
    assert f"reason={reason}" in server.log()
    assert closed_by_server(sock), "the cut client's connection is still open"
    sock.close()
    assert metric(server, "pulseboard_slow_client_disconnects") == 1


def test_the_per_address_limit_counts_a_cut_connection_until_it_is_closed(
    start_server: ServerFactory,
) -> None:
    settings = config(max_lag=100_000, write_timeout=0.5)
    server = start_server({**settings, "limits": {"streams_per_client": 1}})
    stuck = never_reading_client(server)
    wait_until(lambda: metric(server, "pulseboard_streams") == 1, "the stream open")
    assert httpx.get(f"{server.url}/events?channel={CHANNEL}").status_code == 429
    publish_batches(server, 4)

    def admitted() -> bool:
        url = f"{server.url}/events?channel={CHANNEL}"
        with httpx.Client(timeout=5) as client, client.stream("GET", url) as response:
            return response.status_code == 200

    wait_until(admitted, "a second stream admitted once the first is cut")
    assert closed_by_server(stuck), "admitted while the cut connection was open"
    stuck.close()


@pytest.mark.parametrize(
    ("settings", "cut"),
    [({"write_timeout": 0.5}, True), ({"write_timeout": 60.0}, False)],
    ids=["cut-before", "blocked-at-sigterm"],
)
def test_sigterm_with_100_stuck_clients_exits_promptly_without_a_traceback(
    start_server: ServerFactory, settings: dict[str, Any], cut: bool
) -> None:
    server = start_server(config(max_lag=100_000, **settings))
    clients = [never_reading_client(server) for _ in range(100)]
    wait_until(lambda: metric(server, "pulseboard_streams") == 100, "100 streams open")
    publish_batches(server, 4)  # past what the kernel takes for a client that never reads
    if cut:
        wait_until(
            lambda: metric(server, "pulseboard_slow_client_disconnects") == 100,
            "100 clients cut",
            20,
        )
    assert server.process is not None
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    code = server.process.wait(timeout=30)  # a safety net, not a speed threshold
    elapsed = time.monotonic() - started
    log = server.log()
    assert code == 0, log
    assert "Traceback" not in log, log
    for sock in clients:
        sock.close()
    print(f"exited {elapsed:.2f} s after SIGTERM")


def test_a_client_that_half_closes_and_never_reads_loses_its_connection_at_once(
    start_server: ServerFactory,
) -> None:
    server = start_server(config(max_lag=100_000, write_timeout=60.0))
    sock = never_reading_client(server)
    wait_until(lambda: metric(server, "pulseboard_streams") == 1, "the stream open")
    publish_batches(server, 2)  # its socket is full: the stream waits on it
    sock.shutdown(socket.SHUT_WR)
    wait_until(lambda: metric(server, "pulseboard_streams") == 0, "the stream ended")
    assert closed_by_server(sock), "the connection is still open"
    sock.close()
