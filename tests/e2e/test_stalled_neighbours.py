"""What a stalled subscriber costs the server (issue 12.2), read from the kernel with ``ss``.

200 subscribers that never read took the server's time from 20 healthy
neighbours while the kernel kept accepting megabytes for each of them, a
write per event. Two things bound that, both visible in the kernel's own
figures for the server's socket: a never-reading client's send queue stays
small (its stream soon parks instead of writing), and events published
together reach a subscriber in one write (one TCP segment), not one each.
The latency figures are in bench/ (S6) and docs/performance.md.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess

import pytest

from tests.e2e.conftest import ServerFactory
from tests.e2e.test_cut_connection import config, metric, never_reading_client, publish_batches
from tests.support.server import ServerProcess
from tests.support.waiting import wait_until

pytestmark = pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")

# Kernel memory a stalled client may pin on the server: the capped send
# buffer (Linux doubles the 32 KiB asked for). Uncapped, it grows to megabytes.
STALLED_SEND_QUEUE_BYTES = 128 * 1024


def server_socket_info(server: ServerProcess, client: socket.socket) -> tuple[int, int]:
    """Send-Q bytes and segments sent so far, of the server's end of ``client``'s connection."""
    client_port = client.getsockname()[1]
    query = f"( sport = :{server.port} and dport = :{client_port} )"
    listing = subprocess.run(
        ["ss", "-tinH", "state", "established", query],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout
    fields = listing.split()
    assert fields, f"no established connection to port {client_port}"
    segments = re.search(r"segs_out:(\d+)", listing)
    assert segments is not None, listing
    return int(fields[1]), int(segments.group(1))


def test_a_never_reading_client_pins_only_a_small_kernel_send_buffer(
    start_server: ServerFactory,
) -> None:
    server = start_server(config(max_lag=100_000, write_timeout=60.0))
    stalled = never_reading_client(server)
    wait_until(lambda: metric(server, "pulseboard_streams") == 1, "the stream open")
    publish_batches(server, 4)  # 4 MB: writes past a full buffer park the stream
    send_queue, _segments = server_socket_info(server, stalled)
    assert 0 < send_queue <= STALLED_SEND_QUEUE_BYTES
    stalled.close()


def test_events_published_together_reach_a_subscriber_in_one_write(
    start_server: ServerFactory,
) -> None:
    server = start_server(config())
    client = socket.create_connection(("127.0.0.1", server.port))
    client.sendall(b"GET /events?channel=ops.deploys HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    client.settimeout(10)
    received = client.recv(65536)  # the headers and retry: the stream is live
    assert received.startswith(b"HTTP/1.1 200"), received
    _queue, segments_before = server_socket_info(server, client)
    publish_batches(server, 1, per_batch=100, text="deployed")

    def all_received() -> bool:
        nonlocal received
        received += client.recv(65536)
        return received.count(b"\nevent: ops.deploys\n") == 100

    wait_until(all_received, "the 100 events received")
    _queue, segments_after = server_socket_info(server, client)
    assert segments_after - segments_before <= 10  # a write per event made 100 segments
    client.close()
