"""Inputs that used to answer 500 with a traceback: each is now a clear 400, nothing logged."""

from __future__ import annotations

import socket

import httpx
import pytest

from tests.support.server import ServerProcess

DEEP = b"[" * 5000 + b"]" * 5000
TOKEN = "reader-and-publisher"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory):
    """A server with a read token, so /login and its redirects are live."""
    config = {
        "auth": {"read_tokens": [TOKEN], "publish_tokens": [TOKEN]},
        "channels": [{"name": "ops.deploys", "kind": "notify"}],
    }
    server = ServerProcess(tmp_path_factory.mktemp("guarded"), config).start()
    yield server
    server.stop()
    assert "Traceback" not in server.log(), server.log()
    assert "unhandled error" not in server.log()


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def assert_400(response: httpx.Response, field: str) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert field in body["error"], body
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (DEEP, "application/json"),
        (b'{"message":' + DEEP + b"}", "application/json"),
        (DEEP + b"\n", "application/x-ndjson"),
        (b'{"message":"ok"}\n' + DEEP + b"\n", "application/x-ndjson"),
    ],
)
def test_deeply_nested_json_is_a_400(
    guarded: ServerProcess, body: bytes, content_type: str
) -> None:
    answer = httpx.post(
        f"{guarded.url}/api/channels/ops.deploys/events",
        content=body,
        headers={**auth(), "Content-Type": content_type},
    )
    assert_400(answer, "nested too deeply")


def test_json_that_is_not_utf8_is_a_400(guarded: ServerProcess) -> None:
    answer = httpx.post(
        f"{guarded.url}/api/channels/ops.deploys/events",
        content=b'{"message":"\xff"}',
        headers={**auth(), "Content-Type": "application/json"},
    )
    assert_400(answer, "UTF-8")


def test_superscript_digits_are_a_400(guarded: ServerProcess) -> None:
    history = httpx.get(
        f"{guarded.url}/api/channels/ops.deploys/events?limit=%C2%B2", headers=auth()
    )
    assert_400(history, "limit")
    stream = httpx.get(f"{guarded.url}/events?channel=ops.deploys&history=%C2%B2", headers=auth())
    assert_400(stream, "history")
    huge = httpx.get(f"{guarded.url}/events?channel=ops.deploys&history={'9' * 5000}")
    assert huge.status_code in (400, 431), huge.text


@pytest.mark.parametrize("path", ["/api/channels/ops.deploys/events", "/login", "/logout"])
def test_an_origin_that_is_not_a_url_is_a_400(guarded: ServerProcess, path: str) -> None:
    answer = httpx.post(
        f"{guarded.url}{path}", content=b"x", headers={**auth(), "Origin": "http://["}
    )
    assert_400(answer, "Origin")


@pytest.mark.parametrize("next_", ["/a\nb", "/a\x00b", "/a\r\nSet-Cookie: x=1"])
def test_login_with_a_control_character_in_next_goes_home(
    guarded: ServerProcess, next_: str
) -> None:
    with httpx.Client(base_url=guarded.url) as browser:
        done = browser.post("/login", data={"token": TOKEN, "next": next_})
        assert done.status_code == 302, done.text
        assert done.headers["location"] == "/"
        assert "x=1" not in done.headers.get("set-cookie", "")
        form = browser.get("/login", params={"next": next_})
        assert form.status_code == 200
        assert 'value="/"' in form.text


def test_a_control_character_in_a_page_path_is_not_echoed_into_a_header(
    guarded: ServerProcess,
) -> None:
    with socket.create_connection(("127.0.0.1", guarded.port), timeout=5) as sock:
        sock.sendall(
            b"GET /channels/a%0D%0ASet-Cookie:%20x=1 HTTP/1.1\r\n"
            b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head = answer.split(b"\r\n\r\n", 1)[0]
    assert head.startswith(b"HTTP/1.1 302"), head
    assert b"\r\nSet-Cookie: x=1" not in head
    assert b"\r\nlocation: /login?next=/channels/a%0d%0aset-cookie" in head.lower()
