"""Scoped viewers see what is true: their channels and boards, "no access" for the rest, sign-out.

Rendered in-process (the browser tests in tests/browser/test_access.py drive the same pages).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from quart import Quart
from quart.testing import QuartClient

from app.serve.factory import create_app
from app.settings import settings_from_dict

# quart-auth warns that a Strict cookie set on a redirect is dropped by a browser that got
# there cross-site; the sign-in and the kiosk link are typed or opened, not linked.
pytestmark = pytest.mark.filterwarnings("ignore:Strict samesite cookies")

OPS = "ops-viewer-token"  # reads and publishes ops.*
ADMIN = "admin-token-here"  # reads everything
CONFIG: dict[str, Any] = {
    "auth": {
        "secret_key": "a secret key of the access tests",
        "tokens": [
            {"token": OPS, "read": ["ops.*"], "publish": ["ops.*"]},
            {"token": ADMIN, "read": ["*", "*.*"]},
        ],
    },
    "channels": [
        {"name": "log.app", "kind": "log", "title": "App log"},
        {"name": "ops.deploys", "kind": "notify", "title": "Deploys"},
    ],
    "boards": [
        {"name": "logs", "title": "Logs", "channels": ["log.*"]},
        {"name": "ops", "title": "Ops", "channels": ["ops.*"]},
    ],
}


@pytest.fixture
async def app() -> AsyncIterator[Quart]:
    quart_app = create_app(settings_from_dict(CONFIG), run_sources=False)
    async with quart_app.test_app():
        yield quart_app


async def signed_in(app: Quart, token: str) -> QuartClient:
    client = app.test_client()
    answer = await client.post("/login", form={"token": token, "next": "/"})
    assert answer.status_code == 302
    return client


async def page(client: QuartClient, path: str) -> tuple[int, str]:
    answer = await client.get(path)
    return answer.status_code, await answer.get_data(as_text=True)


async def test_a_scoped_viewer_sees_its_channels_and_boards_only(app: Quart) -> None:
    publish = await app.test_client().post(
        "/api/channels/ops.backups/events",
        data="backup done",
        headers={"Authorization": f"Bearer {OPS}", "Content-Type": "text/plain"},
    )
    assert publish.status_code == 201
    client = await signed_in(app, OPS)
    status, home = await page(client, "/")
    assert status == 200
    assert 'sse-swap="ops.deploys"' in home and 'sse-swap="ops.backups"' in home
    assert "log.app" not in home and "Logs" not in home  # neither the channel nor its board
    assert '<form class="signout" method="post" action="/logout">' in home


async def test_unreadable_is_no_access_and_missing_is_not_found(app: Quart) -> None:
    client = await signed_in(app, OPS)
    status, text = await page(client, "/channels/log.app")
    assert (status, "No access to “log.app”" in text) == (403, True)
    status, text = await page(client, "/channels/log.nothing")  # no oracle: same answer
    assert (status, "No access to “log.nothing”" in text) == (403, True)
    status, text = await page(client, "/boards/logs")
    assert (status, "No access to board “logs”" in text) == (403, True)
    status, text = await page(client, "/channels/ops.nothing")
    assert (status, "No channel “ops.nothing”" in text) == (404, True)
    status, text = await page(client, "/boards/nothing")
    assert (status, "No board “nothing”" in text) == (404, True)


async def test_a_token_that_reads_no_board_is_told_so_on_the_home_page(app: Quart) -> None:
    settings = {**CONFIG, "boards": [{"name": "logs", "channels": ["log.*"]}]}
    only_logs = create_app(settings_from_dict(settings), run_sources=False)
    async with only_logs.test_app():
        status, text = await page(await signed_in(only_logs, OPS), "/")
    assert (status, "may not read any board" in text) == (403, True)


async def test_sign_out_ends_the_session(app: Quart) -> None:
    client = await signed_in(app, ADMIN)
    assert (await page(client, "/channels/log.app"))[0] == 200
    out = await client.post("/logout")
    assert (out.status_code, out.headers["Location"]) == (302, "/login")
    again = await client.get("/")
    assert again.status_code == 302 and again.headers["Location"].startswith("/login")


async def test_no_sign_out_button_without_auth() -> None:
    open_app = create_app(settings_from_dict({"channels": CONFIG["channels"]}), run_sources=False)
    async with open_app.test_app():
        status, text = await page(open_app.test_client(), "/")
    assert status == 200 and "Sign out" not in text


async def kiosk_link(app: Quart, token: str | None, body: dict[str, Any]) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = await app.test_client().post("/api/kiosk-links", json=body, headers=headers)
    return answer.status_code, await answer.get_json()


async def test_a_kiosk_link_signs_in_once_read_only(app: Quart) -> None:
    status, made = await kiosk_link(app, OPS, {"board": "ops", "ttl": "5m"})
    assert status == 201 and made["board"] == "ops" and made["expires_in"] == 300
    url = urlsplit(made["url"])
    assert url.path == "/kiosk" and list(parse_qs(url.query)) == ["code"]
    wall = app.test_client()
    opened = await wall.get(f"/kiosk?{url.query}")
    assert (opened.status_code, opened.headers["Location"]) == (303, "/boards/ops?kiosk=1")
    status, board = await page(wall, "/boards/ops?kiosk=1")
    assert status == 200 and 'sse-swap="ops.deploys"' in board
    assert (await page(wall, "/channels/log.app"))[0] == 403  # the token's read scope
    refused = await wall.post(
        "/api/channels/ops.deploys/events", data="x", headers={"Content-Type": "text/plain"}
    )
    assert refused.status_code == 403  # OPS may publish; its kiosk session may not
    status, text = await page(app.test_client(), f"/kiosk?{url.query}")
    assert (status, "already used or has expired" in text) == (410, True)


@pytest.mark.parametrize(
    ("token", "body", "status", "says"),
    [
        (None, {}, 401, "a read token is required"),
        (OPS, {"board": "logs"}, 403, "may read no channel of board 'logs'"),
        (OPS, {"board": "nothing"}, 400, "no board 'nothing' (known: logs, ops)"),
        (OPS, {"ttl": "0s"}, 400, "expected from 1s to 24h"),
        (OPS, {"ttl": "soon"}, 400, "expected a duration"),
        (OPS, {"board": "ops", "scope": "*"}, 400, "scope"),
    ],
)
async def test_kiosk_link_refusals_say_why(
    app: Quart, token: str | None, body: dict[str, Any], status: int, says: str
) -> None:
    answer, error = await kiosk_link(app, token, body)
    assert answer == status and says in str(error["error"]), error


async def test_a_browser_session_cannot_make_kiosk_links(app: Quart) -> None:
    client = await signed_in(app, OPS)
    answer = await client.post("/api/kiosk-links", json={"board": "ops"})
    assert answer.status_code == 403
    assert "bearer token" in (await answer.get_json())["error"]


async def test_kiosk_page_refusals_are_pages(app: Quart) -> None:
    status, text = await page(app.test_client(), "/kiosk")
    assert (status, "has no kiosk code" in text) == (400, True)
    unknown = await app.test_client().get("/kiosk?code=x&board=ops")
    assert unknown.status_code == 400  # an unknown parameter, as everywhere


async def test_without_read_tokens_a_kiosk_link_is_the_board_itself() -> None:
    settings = {**CONFIG, "auth": {"publish_tokens": [OPS]}}
    open_app = create_app(settings_from_dict(settings), run_sources=False)
    async with open_app.test_app():
        status, made = await kiosk_link(open_app, None, {"board": "ops"})
    assert status == 201 and made["url"].endswith("/boards/ops?kiosk=1")
    assert made["expires_in"] is None
