"""chat and notify: a room declared in config exists before anyone posts, and runs nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.events import Event
from app.sources.base import SourceConfigError, configure_sources
from app.sources.chat import CHAT
from app.sources.notify import NOTIFY

TYPES = {"chat": CHAT, "notify": NOTIFY}


def test_a_chat_source_declares_its_room() -> None:
    [room] = configure_sources([{"type": "chat", "channel": "chat.lobby"}], TYPES)
    assert room.type.channels(room.config) == [("chat.lobby", "chat")]


def test_a_notify_source_declares_its_channel() -> None:
    [channel] = configure_sources([{"type": "notify", "channel": "ops.alerts"}], TYPES)
    assert channel.type.channels(channel.config) == [("ops.alerts", "notify")]


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        ({"type": "chat"}, r"sources\[0\]\.channel"),
        ({"type": "chat", "channel": "Lobby!"}, "channel"),
        ({"type": "chat", "channel": "message"}, "reserved"),
        ({"type": "notify", "channel": "ops.alerts", "color": "red"}, "color"),
    ],
)
def test_a_bad_room_is_refused_naming_the_key(entry: dict[str, Any], named: str) -> None:
    with pytest.raises(SourceConfigError, match=named):
        configure_sources([entry], TYPES)


@pytest.mark.parametrize("type_name", ["chat", "notify"])
async def test_a_room_publishes_nothing_and_returns_on_stop(type_name: str) -> None:
    [room] = configure_sources([{"type": type_name, "channel": "chat.lobby"}], TYPES)
    published: list[str] = []

    async def publish(channel: str, kind: str, data: dict[str, Any]) -> Event:
        published.append(channel)
        return None  # type: ignore[return-value]

    stop = asyncio.Event()
    task = asyncio.create_task(room.type.create(room.config).run(publish, stop))
    await asyncio.sleep(0)  # one turn of the loop, not a wait: the room's run() has started
    assert not task.done()
    stop.set()
    await asyncio.wait_for(task, timeout=10)
    assert published == []
