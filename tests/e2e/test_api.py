"""The publish and history API, as curl and scripts use it."""

from __future__ import annotations

import httpx
import pytest

from tests.support.cli import pulseboard
from tests.support.server import ServerProcess


def post(server: ServerProcess, channel: str, **kwargs) -> httpx.Response:
    return httpx.post(f"{server.url}/api/channels/{channel}/events", **kwargs)


def last_data(server: ServerProcess, channel: str) -> dict:
    events = httpx.get(f"{server.url}/api/channels/{channel}/events?limit=1000").json()["events"]
    return events[-1]["data"]


def test_curl_style_form_body_is_the_notification_message(server: ServerProcess) -> None:
    response = post(
        server,
        "ops.deploys",
        content=b"deploy 42 done",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 201
    assert response.json()["id"]
    assert last_data(server, "ops.deploys") == {"message": "deploy 42 done", "level": "info"}


def test_a_form_body_with_thousands_of_fields_is_a_400_not_a_500(server: ServerProcess) -> None:
    response = post(
        server,
        "ops.deploys",
        content=b"message=x&" + b"&".join(b"tags=%d" % n for n in range(1500)),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "body: too many form fields (at most 20)"
    assert "Traceback" not in server.log()


def test_text_plain_and_json_and_form_fields(server: ServerProcess) -> None:
    assert (
        post(
            server, "a.plain", content="line one\nline two", headers={"Content-Type": "text/plain"}
        ).status_code
        == 201
    )
    assert last_data(server, "a.plain")["message"] == "line one\nline two"
    payload = {"message": "m", "title": "T", "level": "warning", "tags": ["db", "x"]}
    assert post(server, "a.json", json=payload).status_code == 201
    assert last_data(server, "a.json") == payload
    form = {"message": "hi", "title": "Backup", "tags": "nightly, db"}
    assert post(server, "a.form", data=form).status_code == 201
    assert last_data(server, "a.form")["tags"] == ["nightly", "db"]
    assert post(server, "chat.lobby", data={"user": "ann", "text": "hello"}).status_code == 201
    assert last_data(server, "chat.lobby") == {"user": "ann", "text": "hello"}


@pytest.mark.parametrize(
    ("channel", "kwargs", "status", "field"),
    [
        ("chat.lobby", {"data": {"user": "ann", "text": "t" * 2001}}, 400, "text"),
        ("chat.lobby", {"json": {"user": "ann"}}, 400, "text"),
        (
            "chat.lobby",
            {"content": b"just text", "headers": {"Content-Type": "text/plain"}},
            400,
            "body",
        ),
        (
            "a.bad",
            {"content": b"{nope", "headers": {"Content-Type": "application/json"}},
            400,
            "body",
        ),
        ("a.bad", {"json": [1, 2]}, 400, "body"),
        ("a.bad", {"json": {"message": "x", "extra": 1}}, 400, "extra"),
        ("a.bad", {"content": b"\xff\xfe", "headers": {"Content-Type": "text/plain"}}, 400, "body"),
        ("a.bad", {"content": b"", "headers": {"Content-Type": "text/plain"}}, 400, "message"),
        ("Bad.Channel", {"content": b"x"}, 400, "channel"),
        ("message", {"content": b"x"}, 400, "channel"),
    ],
)
def test_bad_publishes_are_clear_400s_that_change_nothing(
    server: ServerProcess, channel: str, kwargs: dict, status: int, field: str
) -> None:
    before = httpx.get(f"{server.url}/api/channels").json()
    response = post(server, channel, **kwargs)
    assert response.status_code == status
    assert response.json()["detail"]["field"] == field
    assert httpx.get(f"{server.url}/api/channels").json() == before


@pytest.mark.parametrize("channel", ["log.app", "ticker"])
def test_source_channels_refuse_external_posts_with_409(
    server: ServerProcess, channel: str
) -> None:
    response = post(server, channel, json={"line": "forged", "file": "x", "level": None})
    assert response.status_code == 409
    assert "error" in response.json()


def test_oversized_body_is_413(server: ServerProcess) -> None:
    response = post(
        server, "a.big", content=b"x" * (65 * 1024), headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 413
    assert response.json()["error"]


def test_batch_is_all_or_nothing(server: ServerProcess) -> None:
    good = b'{"message": "1"}\n{"message": "2"}\n'
    response = post(
        server, "a.batch", content=good, headers={"Content-Type": "application/x-ndjson"}
    )
    assert response.status_code == 201
    assert len(response.json()["ids"]) == 2
    bad = b'{"message": "3"}\n{"mesage": "4"}\n'
    response = post(
        server, "a.batch", content=bad, headers={"Content-Type": "application/x-ndjson"}
    )
    assert response.status_code == 400
    assert response.json()["detail"]["field"] == "events[2].mesage"
    history = httpx.get(f"{server.url}/api/channels/a.batch/events").json()["events"]
    assert [e["data"]["message"] for e in history] == ["1", "2"]


def test_channel_listing_and_history_pages(server: ServerProcess) -> None:
    ids = [post(server, "a.hist", content=str(i).encode()).json()["id"] for i in range(5)]
    listing = {c["name"]: c for c in httpx.get(f"{server.url}/api/channels").json()["channels"]}
    assert listing["a.hist"] == {
        "name": "a.hist",
        "kind": "notify",
        "subscribers": 0,
        "last_id": ids[-1],
        "retained": 5,
    }
    assert listing["chat.lobby"]["kind"] == "chat"
    page = httpx.get(f"{server.url}/api/channels/a.hist/events?after={ids[1]}&limit=2").json()
    assert [e["id"] for e in page["events"]] == ids[2:4]
    assert page["gap"] is False
    foreign = httpx.get(f"{server.url}/api/channels/a.hist/events?after=zz-1").json()
    assert foreign["gap"] is True
    assert [e["id"] for e in foreign["events"]] == ids


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/channels/nope.none/events", 404),
        ("/api/channels/a.bad/events?limit=0", 400),
        ("/api/channels/a.bad/events?limit=abc", 400),
        ("/api/nothing", 404),
        ("/api/channels/..%2f..%2fetc%2fpasswd/events", 404),
    ],
)
def test_bad_reads_are_json_4xx(server: ServerProcess, path: str, status: int) -> None:
    post(server, "a.bad", content=b"x")  # its own channel: the listing test counts a.hist
    response = httpx.get(f"{server.url}{path}")
    assert response.status_code == status
    assert response.json()["error"]


def test_health_and_readiness(server: ServerProcess) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["ready"] is True


def test_cli_publish_prints_the_id(server: ServerProcess) -> None:
    done = pulseboard("publish", "ops.deploys", "deploy 43 done", "--url", server.url)
    assert done.returncode == 0, done.stderr
    assert last_data(server, "ops.deploys")["message"] == "deploy 43 done"
    assert (
        done.stdout.strip()
        == httpx.get(f"{server.url}/api/channels/ops.deploys/events?limit=1000").json()["events"][
            -1
        ]["id"]
    )


def test_cli_publish_reports_refusals_with_exit_2(server: ServerProcess) -> None:
    done = pulseboard("publish", "log.app", "x", "--url", server.url)
    assert done.returncode == 2
    assert "409" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_publish_posts_a_chat_message_with_user(server: ServerProcess) -> None:
    done = pulseboard("publish", "chat.lobby", "hi from a script", "--user", "bot",
                      "--url", server.url)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert last_data(server, "chat.lobby") == {"user": "bot", "text": "hi from a script"}
