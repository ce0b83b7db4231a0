"""Channels have bounds (issue 12, point 4): a limit on new names, paged listings, few series."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import ServerFactory
from tests.support.server import ServerProcess
from tests.support.waiting import wait_until

DECLARED = [
    {"name": "ops.deploys", "kind": "notify"},
    {"name": "chat.lobby", "kind": "chat"},
]


def config(**limits: Any) -> dict[str, Any]:
    return {"channels": DECLARED, "limits": limits}


def post(server: ServerProcess, channel: str, text: str = "x") -> httpx.Response:
    return httpx.post(f"{server.url}/api/channels/{channel}/events", content=text.encode())


def listing(server: ServerProcess, query: str = "") -> httpx.Response:
    return httpx.get(f"{server.url}/api/channels{query}")


def test_a_new_channel_beyond_max_channels_is_a_429_naming_the_limit(
    start_server: ServerFactory,
) -> None:
    server = start_server(config(max_channels=2))
    assert post(server, "a.one").status_code == 201
    assert post(server, "a.two").status_code == 201
    refused = post(server, "a.three")
    assert refused.status_code == 429, refused.text
    body = refused.json()
    assert "limits.max_channels" in body["error"]
    assert body["detail"] == {
        "limit": "limits.max_channels",
        "max_channels": 2,
        "channel": "a.three",
    }
    assert httpx.get(f"{server.url}/api/channels/a.three/events").status_code == 404
    assert post(server, "a.two").status_code == 201
    assert post(server, "ops.deploys").status_code == 201
    names = [c["name"] for c in listing(server).json()["channels"]]
    assert names == ["a.one", "a.two", "chat.lobby", "ops.deploys"]


def test_the_channel_listing_pages_with_limit_and_after(start_server: ServerFactory) -> None:
    server = start_server(config())
    for number in range(7):
        assert post(server, f"a.c{number}").status_code == 201
    everything = [f"a.c{n}" for n in range(7)] + ["chat.lobby", "ops.deploys"]
    whole = listing(server).json()
    assert [c["name"] for c in whole["channels"]] == everything
    assert whole["next"] is None
    seen: list[str] = []
    after = ""
    for _page in range(len(everything)):
        page = listing(server, f"?limit=4{after}").json()
        seen += [c["name"] for c in page["channels"]]
        if page["next"] is None:
            break
        after = f"&after={page['next']}"
    assert seen == everything
    assert [c["name"] for c in listing(server, "?after=a.c5").json()["channels"]] == everything[6:]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?limit=0", "limit"),
        ("?limit=1001", "limit"),
        ("?limit=ten", "limit"),
        ("?limit=%C2%B2", "limit"),
        ("?limit=-1", "limit"),
        ("?after=Not%20A%20Channel", "after"),
        ("?after=", "after"),
    ],
)
def test_bad_paging_values_are_clear_400s(
    start_server: ServerFactory, query: str, field: str
) -> None:
    server = start_server(config())
    response = listing(server, query)
    assert response.status_code == 400, response.text
    assert response.json()["detail"]["field"] == field


def metric_samples(server: ServerProcess, name: str) -> dict[str, float]:
    text = httpx.get(f"{server.url}/metrics").text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                samples[sample.labels["channel"]] = sample.value
    return samples


def test_metrics_name_declared_channels_and_sum_the_rest_under_other(
    start_server: ServerFactory,
) -> None:
    server = start_server(config())
    for number in range(5):
        assert post(server, f"a.c{number}").status_code == 201
    assert post(server, "a.c0").status_code == 201
    assert post(server, "ops.deploys").status_code == 201
    published = metric_samples(server, "pulseboard_events_published_total")
    assert published == {"ops.deploys": 1.0, "_other": 6.0}
    subscribers = metric_samples(server, "pulseboard_subscribers")
    assert subscribers == {"chat.lobby": 0.0, "ops.deploys": 0.0, "_other": 0.0}


def test_the_server_sweeps_an_idle_undeclared_channel(start_server: ServerFactory) -> None:
    server = start_server(config(channel_idle_ttl="1s"))
    assert post(server, "a.brief").status_code == 201
    history = f"{server.url}/api/channels/a.brief/events"
    assert httpx.get(history).status_code == 200
    wait_until(lambda: httpx.get(history).status_code == 404, "a.brief swept", within_s=20)
    names = [c["name"] for c in listing(server).json()["channels"]]
    assert names == ["chat.lobby", "ops.deploys"]
