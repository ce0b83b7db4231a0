"""DNS rebinding: a page on evil.example whose name points at 127.0.0.1 gets nothing.

The browser sends ``Host: evil.example:PORT`` and a matching ``Origin``; the
server answers only the names in ``server.allowed_hosts`` (loopback names by
default on a loopback bind) with anything but 421.
"""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from tests.support.cli import pulseboard
from tests.support.server import ServerProcess


def raw_get(server: ServerProcess, path: str, host: str) -> bytes:
    """One HTTP/1.1 request over a socket (the lean /events path included).

    Returns the whole answer of a refusal, or the head and first bytes of a stream.
    """
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
            if answer.startswith(b"HTTP/1.1 200") and b"retry:" in answer:
                break
    return answer


def test_a_rebound_name_can_neither_publish_nor_stream(server: ServerProcess) -> None:
    evil = f"evil.example:{server.port}"
    published = httpx.post(
        f"{server.url}/api/channels/ops.rebind/events",
        content=b"pwned",
        headers={"Host": evil, "Origin": f"http://{evil}"},
    )
    assert published.status_code == 421
    assert published.json()["error"].startswith("unknown Host")
    listing = httpx.get(f"{server.url}/api/channels").json()["channels"]
    assert "ops.rebind" not in {c["name"] for c in listing}
    stream = raw_get(server, "/events?channel=*.*", evil)  # the lean fast path
    assert stream.startswith(b"HTTP/1.1 421"), stream[:200]
    assert b"unknown Host" in stream
    assert b"retry:" not in stream
    for path in ("/", "/api/channels", "/metrics", "/login", "/static/app.css"):
        assert httpx.get(f"{server.url}{path}", headers={"Host": evil}).status_code == 421, path


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]", "LOCALHOST"])
def test_loopback_names_work_at_any_port(server: ServerProcess, host: str) -> None:
    headers = {"Host": f"{host}:{server.port}"}
    assert httpx.get(f"{server.url}/api/channels", headers=headers).status_code == 200
    stream = raw_get(server, "/events?channel=ops.deploys&history=1", f"{host}:{server.port}")
    assert stream.startswith(b"HTTP/1.1 200"), stream[:200]
    same_origin = {**headers, "Origin": f"http://{host.lower()}:{server.port}"}
    posted = httpx.post(
        f"{server.url}/api/channels/ops.deploys/events", content=b"hi", headers=same_origin
    )
    assert posted.status_code == 201


def test_another_port_on_localhost_is_another_site(server: ServerProcess) -> None:
    refused = httpx.post(
        f"{server.url}/api/channels/ops.deploys/events",
        content=b"from another local app",
        headers={"Host": f"localhost:{server.port}", "Origin": "http://localhost:1"},
    )
    assert refused.status_code == 403


def test_allowed_hosts_names_the_public_name(start_server) -> None:
    server = start_server({"server": {"allowed_hosts": ["dash.example.com", "127.0.0.1"]}})
    public = {"Host": "dash.example.com", "Origin": "https://dash.example.com"}
    assert httpx.get(f"{server.url}/api/channels", headers=public).status_code == 200
    posted = httpx.post(f"{server.url}/api/channels/ops.x/events", content=b"hi", headers=public)
    assert posted.status_code == 201
    assert httpx.get(f"{server.url}/api/channels").status_code == 200  # 127.0.0.1: listed
    local = {"Host": f"localhost:{server.port}"}  # not listed: the default is replaced
    assert httpx.get(f"{server.url}/api/channels", headers=local).status_code == 421
    assert raw_get(server, "/events?channel=ops.x", "localhost").startswith(b"HTTP/1.1 421")


def test_a_public_bind_must_say_which_hosts(tmp_path: Path) -> None:
    config = tmp_path / "public.toml"
    config.write_text('[server]\nbind = "0.0.0.0:8999"\n[auth]\npublish_tokens = ["t0123456789"]\n')
    done = pulseboard("check-config", str(config))
    assert done.returncode == 2
    assert "server.allowed_hosts" in done.stderr
    assert "Traceback" not in done.stderr
    done = pulseboard("serve", "--config", str(config))
    assert done.returncode == 2
    assert "server.allowed_hosts" in done.stderr
    config.write_text(config.read_text().replace('8999"\n', '8999"\nallowed_hosts = ["*"]\n'))
    done = pulseboard("check-config", str(config))
    assert done.returncode == 0, done.stderr
