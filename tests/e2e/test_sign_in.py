"""Signing in: the redirect after it stays on this site."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.server import ServerProcess

READER = "reader-token-123"
CONFIG = {
    "auth": {"read_tokens": [READER], "secret_key": "a-test-secret-key-long-enough"},
    "channels": [{"name": "ops.deploys", "kind": "notify"}],
}


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
