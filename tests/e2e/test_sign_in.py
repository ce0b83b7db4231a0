"""Signing in and out: redirects stay on this site, guessing is throttled, logout ends it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from app.throttle import FAILURES, WINDOW_S
from tests.support.server import ServerProcess

READER = "reader-token-123"
HISTORY = "/api/channels/ops.deploys/events"  # needs a read grant
CONFIG = {
    "auth": {"read_tokens": [READER], "secret_key": "a-test-secret-key-long-enough"},
    "channels": [{"name": "ops.deploys", "kind": "notify"}],
}


def refills_within(seconds: float) -> int:
    """Guesses the throttle gives back in ``seconds`` (10 a minute): a slow machine's requests."""
    return int(seconds * FAILURES / WINDOW_S)


@contextmanager
def sign_in(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=5) as browser:
        done = browser.post("/login", data={"token": READER, "next": "/"})
        assert done.status_code == 302, done.text
        yield browser


@pytest.fixture(scope="module")
def signing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("signing"), CONFIG).start()
    yield server
    server.stop()
    assert "Traceback" not in server.log()


@pytest.mark.parametrize(
    "next_",
    ["/%09/evil.example", "/\t/evil.example", "//evil.example", "/\\evil.example", "/%2F/evil"],
)
def test_next_never_leaves_the_site(signing: ServerProcess, next_: str) -> None:
    server = signing
    done = httpx.post(f"{server.url}/login", data={"token": READER, "next": next_})
    assert done.status_code == 302
    assert done.headers["location"] == "/"
    form = httpx.get(f"{server.url}/login", params={"next": next_})
    assert 'value="/"' in form.text
    kept = httpx.post(f"{server.url}/login", data={"token": READER, "next": "/channels/ops.x?a=1"})
    assert kept.headers["location"] == "/channels/ops.x?a=1"


def test_wrong_login_tokens_are_throttled_and_logged_boundedly(start_server) -> None:
    server = start_server(CONFIG)
    url = f"{server.url}/login"
    started = time.monotonic()
    answers = [httpx.post(url, data={"token": f"guess-{i:04d}"}).status_code for i in range(30)]
    throttled = httpx.post(url, data={"token": READER})  # even the right one: no oracle
    refilled = refills_within(time.monotonic() - started)
    assert answers[:10] == [401] * 10
    assert set(answers[10:]) <= {401, 429} and answers[10:].count(401) <= refilled
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) >= 1
    assert "Too many failed sign-ins" in throttled.text
    log = server.log()
    assert log.count("auth failure") == answers.count(401)
    assert 1 <= log.count("auth throttled") <= 1 + refilled


def test_wrong_bearer_tokens_are_throttled(start_server) -> None:
    server = start_server(CONFIG)
    url = f"{server.url}/api/channels"
    started = time.monotonic()
    answers = [
        httpx.get(url, headers={"Authorization": f"Bearer guess-{i:04d}"}).status_code
        for i in range(25)
    ]
    refused = httpx.get(url, headers={"Authorization": f"Bearer {READER}"})
    refilled = refills_within(time.monotonic() - started)
    assert answers[:10] == [401] * 10
    assert set(answers[10:]) <= {401, 429} and answers[10:].count(401) <= refilled
    assert refused.status_code == 429
    assert refused.json()["error"].startswith("too many wrong tokens")
    assert int(refused.headers["Retry-After"]) >= 1
    assert server.log().count("auth failure") == answers.count(401)


def test_a_session_from_before_the_flood_still_works(start_server) -> None:
    """A cookie is not an attempt: the guesser's address is throttled, not the session."""
    server = start_server(CONFIG)
    with sign_in(server) as browser:
        for i in range(15):
            httpx.get(f"{server.url}/api/channels", headers={"Authorization": f"Bearer g{i:07d}"})
        assert browser.get(HISTORY).status_code == 200


def test_logout_ends_the_session_on_the_server(start_server) -> None:
    server = start_server(CONFIG)
    with sign_in(server) as browser:
        copied = dict(browser.cookies)
        assert browser.get(HISTORY).status_code == 200
        assert browser.post("/logout").status_code == 302
    with httpx.Client(base_url=server.url, cookies=copied, timeout=5) as replay:
        assert replay.get(HISTORY).status_code == 401
        assert replay.get("/").status_code == 302  # to /login
        assert replay.get("/events?channel=ops.deploys").status_code == 401


def test_sessions_expire_after_session_ttl(start_server) -> None:
    server = start_server({**CONFIG, "auth": {**CONFIG["auth"], "session_ttl": "3s"}})
    with sign_in(server) as idle:
        time.sleep(3.5)  # nothing to await: the state is the passing of time
        with sign_in(server) as fresh:
            assert fresh.get(HISTORY).status_code == 200
        assert idle.get(HISTORY).status_code == 401
