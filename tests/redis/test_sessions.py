"""Sessions on redis://: a logout on one gateway ends the session on every gateway."""

from __future__ import annotations

from typing import Any

import httpx
import redis

from tests.broker.conftest import RedisServer
from tests.redis.conftest import GatewayFactory

READER = "reader-token-123"
HISTORY = "/api/channels/ops.deploys/events"  # needs a read grant


def test_logout_on_one_gateway_ends_the_session_on_the_other(
    redis_server: RedisServer, deployment: dict[str, Any], start_gateway: GatewayFactory
) -> None:
    config = {
        **deployment,
        "auth": {
            "read_tokens": [READER],
            "secret_key": "a-test-secret-key-long-enough",
            "session_ttl": "30m",
        },
    }
    first, second = start_gateway(config), start_gateway(config, "--no-sources")
    with httpx.Client(base_url=first.url, timeout=5) as browser:
        assert browser.post("/login", data={"token": READER}).status_code == 302
        cookies = dict(browser.cookies)
    prefix = deployment["broker"]["key_prefix"]
    client = redis.Redis(port=redis_server.port)
    (key,) = client.keys(f"{prefix}:session:*")
    assert 0 < client.pttl(key) <= 30 * 60 * 1000
    with httpx.Client(base_url=second.url, cookies=cookies, timeout=5) as other:
        assert other.get(HISTORY).status_code == 200
        assert other.post("/logout").status_code == 302
    assert client.keys(f"{prefix}:session:*") == []
    with httpx.Client(base_url=first.url, cookies=cookies, timeout=5) as replay:
        assert replay.get(HISTORY).status_code == 401
    client.close()


def test_a_kiosk_code_made_on_one_gateway_is_redeemed_once_on_any(
    redis_server: RedisServer, deployment: dict[str, Any], start_gateway: GatewayFactory
) -> None:
    config = {**deployment, "auth": {"read_tokens": [READER], "secret_key": "a-test-secret-key!"}}
    first, second = start_gateway(config), start_gateway(config, "--no-sources")
    made = httpx.post(
        f"{first.url}/api/kiosk-links",
        json={"ttl": "2m"},
        headers={"Authorization": f"Bearer {READER}"},
    )
    assert made.status_code == 201, made.text
    query = made.json()["url"].partition("?")[2]
    prefix = deployment["broker"]["key_prefix"]
    client = redis.Redis(port=redis_server.port)
    (key,) = client.keys(f"{prefix}:kiosk-code:*")
    assert 0 < client.pttl(key) <= 2 * 60 * 1000
    with httpx.Client(base_url=second.url, timeout=5) as wall:
        opened = wall.get(f"/kiosk?{query}")
        assert (opened.status_code, opened.headers["location"]) == (303, "/?kiosk=1")
        assert wall.get(HISTORY).status_code == 200
    assert httpx.get(f"{first.url}/kiosk?{query}").status_code == 410
    assert client.keys(f"{prefix}:kiosk-code:*") == []
    client.close()
