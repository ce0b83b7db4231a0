"""What the fuzzer (tests/e2e/test_fuzz.py) found, one regression test each."""

from __future__ import annotations

import httpx

from tests.support.server import ServerProcess


def test_a_wrong_method_is_a_405_naming_the_allowed_methods(server: ServerProcess) -> None:
    response = httpx.request("TRACE", f"{server.url}/api/channels")
    assert response.status_code == 405
    assert response.json()["error"] == "method not allowed"
    assert {"GET", "HEAD"} <= {m.strip() for m in response.headers["Allow"].split(",")}
