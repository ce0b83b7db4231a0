"""An acknowledgement is an event: on redis:// it outlives the gateway that took it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.redis.conftest import GatewayFactory

pytestmark = pytest.mark.redis

ALERT = {
    "message": "ERROR payments: charge failed",
    "title": "Payment failures",
    "level": "error",
    "tags": ["alert", "log.app"],
    "key": "alert.payment-failures.e-1",
}


def test_an_acknowledged_alert_stays_collapsed_after_a_restart(
    start_gateway: GatewayFactory, deployment: dict[str, Any]
) -> None:
    first = start_gateway(deployment)
    posted = httpx.post(f"{first.url}/api/channels/ops.deploys/events", json=ALERT)
    assert posted.status_code == 201, posted.text
    acked = httpx.post(f"{first.url}/api/channels/ops.deploys/acks", data={"key": ALERT["key"]})
    assert acked.status_code == 303  # a plain form post: back to the page
    first.stop()
    second = start_gateway(deployment)
    page = httpx.get(f"{second.url}/channels/ops.deploys").text
    assert page.count("Payment failures") == 1
    assert "alert-acknowledged" in page and "<details" in page
    assert 'name="key"' not in page  # no Acknowledge form
    again = httpx.post(f"{second.url}/api/channels/ops.deploys/acks", json={"key": ALERT["key"]})
    assert (again.status_code, again.json()["state"]) == (200, "acknowledged")
