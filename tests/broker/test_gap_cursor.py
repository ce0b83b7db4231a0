"""The cursor a gap hands out (issue 14.4): reconnecting with it is no second gap."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.broker.base import Broker, Start
from app.events import parse_event_id
from tests.broker.conftest import build_broker


@pytest.fixture(params=["memory", "sqlite"])
async def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Broker:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/gap.db"
    created = build_broker(url, history=3)
    await created.start()
    yield created
    await created.close()


async def test_an_idle_channel_gap_hands_a_cursor_that_is_no_gap_again(broker: Broker) -> None:
    await broker.declare("ops.idle", "notify")
    async with broker.subscribe(["ops.idle"], Start(after="deadbeef-7")) as first:
        assert first.gap_channels == ["ops.idle"]
        cursor = first.gap_cursor
    assert cursor is not None and parse_event_id(cursor) == (broker.epoch, 0)
    async with broker.subscribe(["ops.idle"], Start(after=cursor)) as again:
        assert again.gap_channels == []


async def test_the_gap_cursor_is_just_before_the_replay_that_follows(broker: Broker) -> None:
    published = [await broker.publish("ops.x", "notify", {"message": str(n)}) for n in range(5)]
    async with broker.subscribe(["ops.x"], Start(after=published[0].id)) as first:
        assert first.gap_channels == ["ops.x"]
        replay = first.take()
        cursor = first.gap_cursor
    assert [e.id for e in replay] == [e.id for e in published[2:]]
    assert cursor == f"{broker.epoch}-{published[2].seq - 1}"
    async with broker.subscribe(["ops.x"], Start(after=cursor)) as again:
        assert again.gap_channels == []
        assert [e.id for e in again.take()] == [e.id for e in published[2:]]
