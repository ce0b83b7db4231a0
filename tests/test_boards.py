"""Boards: which channels a board shows, spans, the config shape, and the pages in-process."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from quart import Quart

from app.boards import Board, boards_from_settings, place, signature, span_of
from app.serve.factory import create_app
from app.settings import SettingsError, settings_from_dict
from app.web.runtime import EXTENSION

CHANNELS = [
    ("ticker", "ticker", "Market"),
    ("log.app", "log", "App"),
    ("ops.alerts", "notify", "Alerts"),
    ("log.access", "log", "Access"),
    ("chat.lobby", "chat", "Lobby"),
]
CONFIG: dict[str, Any] = {
    "channels": [{"name": n, "kind": k, "title": t} for n, k, t in CHANNELS],
    "boards": [
        {
            "name": "ops",
            "title": "Operations",
            "channels": ["log.*", "ops.*"],
            "span": {"log.app": [2, 2], "log.*": [1, 2]},
        },
        {"name": "market", "title": "Market", "channels": ["ticker", "chat.lobby"]},
    ],
}


def test_a_board_places_names_and_patterns_in_its_order() -> None:
    board = Board("ops", "Ops", ("ops.*", "log.*", "ticker"))
    assert [t.channel for t in place(board, CHANNELS)] == [
        "ops.alerts",
        "log.access",
        "log.app",
        "ticker",
    ]


def test_a_board_without_channels_shows_every_candidate_logs_wide() -> None:
    tiles = place(Board("all", "All"), CHANNELS)
    assert [(t.channel, t.columns, t.rows) for t in tiles][:3] == [
        ("ticker", 1, 1),
        ("log.app", 2, 1),
        ("ops.alerts", 1, 1),
    ]


def test_span_prefers_the_channels_own_key_then_the_first_pattern() -> None:
    board = Board("b", "B", ("log.*",), {"log.*": (1, 2), "log.app": (3, 2)})
    assert span_of(board, "log.app", "log") == (3, 2)
    assert span_of(board, "log.db", "log") == (1, 2)
    assert span_of(board, "ticker", "ticker") == (1, 1)


def test_signature_changes_when_a_channel_joins() -> None:
    board = Board("all", "All")
    before = signature(place(board, CHANNELS))
    assert signature(place(board, CHANNELS)) == before
    assert signature(place(board, [*CHANNELS, ("backups", "notify", "backups")])) != before


def test_boards_config_shape() -> None:
    settings = settings_from_dict(CONFIG)
    boards = boards_from_settings(settings.boards)
    assert [b.name for b in boards] == ["ops", "market"]
    assert boards[0].span == {"log.app": (2, 2), "log.*": (1, 2)}
    assert [b.name for b in boards_from_settings([])] == ["all"]


@pytest.mark.parametrize(
    ("board", "message"),
    [
        ({"name": "Ops!"}, "boards[0].name"),
        ({"name": "ops", "channels": ["Log.*"]}, "boards[0].channels"),
        ({"name": "ops", "span": {"log..x": [1, 1]}}, "boards[0].span"),
        ({"name": "ops", "span": {"log.*": [4, 1]}}, "boards[0].span.log.*"),
        ({"name": "ops", "span": {"log.*": [1]}}, "boards[0].span"),
        ({"name": "ops", "colour": "red"}, "boards[0].colour: unknown key"),
    ],
)
def test_bad_boards_are_refused_naming_the_key(board: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        settings_from_dict({"boards": [board]})


def test_two_boards_with_one_name_are_refused() -> None:
    with pytest.raises(SettingsError, match=r"boards\[1\]\.name"):
        settings_from_dict({"boards": [{"name": "ops"}, {"name": "ops"}]})


async def page_app(config: dict[str, Any]) -> AsyncIterator[Quart]:
    quart_app = create_app(settings_from_dict(config), run_sources=False)
    async with quart_app.test_app():
        yield quart_app


@pytest.fixture
async def app() -> AsyncIterator[Quart]:
    async for quart_app in page_app(CONFIG):
        yield quart_app


@pytest.fixture
async def default_app() -> AsyncIterator[Quart]:
    async for quart_app in page_app({"channels": CONFIG["channels"]}):
        yield quart_app


async def get(app: Quart, path: str) -> tuple[int, str]:
    response = await app.test_client().get(path)
    return response.status_code, await response.get_data(as_text=True)


def panel_channels(page: str) -> list[str]:
    return re.findall(r'class="panel-feed" sse-swap="([^"]+)"', page)


async def test_root_is_the_first_board_and_boards_are_in_the_nav(app: Quart) -> None:
    status, page = await get(app, "/")
    assert status == 200
    assert panel_channels(page) == ["log.access", "log.app", "ops.alerts"]
    assert "--span-columns: 2; --span-rows: 2" in page
    assert '<a href="/" aria-current="page">Operations</a>' in page
    assert '<a href="/boards/market">Market</a>' in page
    _, market = await get(app, "/boards/market")
    assert panel_channels(market) == ["ticker", "chat.lobby"]


async def test_an_unknown_board_is_a_404_page(app: Quart) -> None:
    status, page = await get(app, "/boards/nope")
    assert status == 404
    assert "No board" in page


async def test_kiosk_renders_no_navigation(app: Quart) -> None:
    _, page = await get(app, "/boards/market?kiosk=1")
    assert "<nav" not in page
    assert "kiosk=1" in re.findall(r'hx-get="(/boards/[^"]+)"', page)[0]


async def test_a_channel_created_by_publishing_is_on_the_default_board(default_app: Quart) -> None:
    runtime = default_app.extensions[EXTENSION]
    await runtime.broker.publish("backups", "notify", {"message": "backup done", "level": "info"})
    _, page = await get(default_app, "/")
    assert "backups" in panel_channels(page)
    assert "backup done" in page
    assert 'href="/channels/backups"' in page


async def test_changes_answers_204_until_a_channel_joins(app: Quart) -> None:
    _, page = await get(app, "/")
    watch = re.findall(r'hx-get="(/boards/[^"]+/changes[^"]*)"', page)[0].replace("&amp;", "&")
    status, body = await get(app, watch)
    assert (status, body) == (204, "")
    runtime = app.extensions[EXTENSION]
    await runtime.broker.publish("ops.backups", "notify", {"message": "done", "level": "info"})
    status, body = await get(app, watch)
    assert status == 200
    assert "ops.backups" in panel_channels(body)
