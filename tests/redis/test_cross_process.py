"""Delivery rules across processes: two ``pulseboard serve`` gateways on one Redis.

A client may publish on one gateway, stream from another and resume on a
third with its Last-Event-ID (DESIGN section 5 rule 1, issue 5 item 3).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.redis.conftest import GatewayFactory
from tests.support.server import ServerProcess
from tests.support.sse_client import SSEStream

pytestmark = pytest.mark.redis


async def publish(gateway: ServerProcess, message: str, channel: str = "ops.deploys") -> str:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{gateway.url}/api/channels/{channel}/events", json={"message": message}
        )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def stream_url(gateway: ServerProcess, query: str = "") -> str:
    return f"{gateway.url}/events?channel=ops.deploys&format=json{query}"


def messages(events: list[Any]) -> list[str]:
    return [json.loads(event.data)["data"]["message"] for event in events]


async def test_published_on_a_is_streamed_by_b(
    start_gateway: GatewayFactory, deployment: dict[str, Any]
) -> None:
    a, b = start_gateway(deployment), start_gateway(deployment)
    async with SSEStream(stream_url(b)) as stream:
        published = await publish(a, "deploy 42 done")
        event = await stream.next_event()
    assert (event.id, event.event) == (published, "ops.deploys")
    assert messages([event]) == ["deploy 42 done"]


async def test_a_client_of_b_resumes_on_a_with_exactly_the_missed_events(
    start_gateway: GatewayFactory, deployment: dict[str, Any]
) -> None:
    a, b = start_gateway(deployment), start_gateway(deployment)
    async with SSEStream(stream_url(b)) as stream:
        await publish(a, "one")
        await publish(b, "two")
        seen = await stream.events(2)
    missed = [await publish(a, "three"), await publish(b, "four"), await publish(a, "five")]
    async with SSEStream(stream_url(a), {"Last-Event-ID": seen[-1].id}) as stream:
        resumed = await stream.events(3)
        live = await publish(b, "six")
        following = await stream.next_event()
    assert [e.id for e in resumed] == missed
    assert messages(resumed) == ["three", "four", "five"]
    assert following.id == live


async def test_the_query_cursor_works_across_gateways_too(
    start_gateway: GatewayFactory, deployment: dict[str, Any]
) -> None:
    a, b = start_gateway(deployment), start_gateway(deployment)
    first = await publish(a, "one")
    second = await publish(a, "two")
    async with SSEStream(stream_url(b, f"&last_event_id={first}")) as stream:
        (event,) = await stream.events(1)
    assert event.id == second


async def test_a_cursor_older_than_redis_retains_is_a_gap_on_the_other_gateway(
    start_gateway: GatewayFactory, deployment: dict[str, Any]
) -> None:
    deployment["broker"]["history"] = 5
    a, b = start_gateway(deployment), start_gateway(deployment)
    ids = [await publish(a, f"m{n}") for n in range(12)]
    async with SSEStream(stream_url(b), {"Last-Event-ID": ids[0]}) as stream:
        gap = await stream.next_event()
        retained = await stream.events(5)
    assert gap.event == "gap"
    assert json.loads(gap.data) == {"channels": ["ops.deploys"]}
    assert [e.id for e in retained] == ids[-5:]


async def test_history_n_is_the_same_on_every_gateway(
    start_gateway: GatewayFactory, deployment: dict[str, Any]
) -> None:
    a, b = start_gateway(deployment), start_gateway(deployment)
    ids = [await publish(a, f"m{n}") for n in range(6)]
    for gateway in (a, b):
        async with SSEStream(stream_url(gateway, "&history=3")) as stream:
            replayed = await stream.events(3)
        assert [e.id for e in replayed] == ids[-3:]


async def test_the_history_api_answers_the_same_on_every_gateway(
    start_gateway: GatewayFactory, deployment: dict[str, Any]
) -> None:
    a, b = start_gateway(deployment), start_gateway(deployment)
    ids = [await publish(a, f"m{n}") for n in range(5)]
    pages = []
    async with httpx.AsyncClient() as client:
        for gateway in (a, b):
            url = f"{gateway.url}/api/channels/ops.deploys/events?after={ids[1]}&limit=2"
            response = await client.get(url)
            assert response.status_code == 200, response.text
            pages.append([event["id"] for event in response.json()["events"]])
    assert pages == [ids[2:4], ids[2:4]]
