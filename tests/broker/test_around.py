"""around(): a retained line and its neighbours, on every broker (the viewer's context view)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.broker.base import Broker
from app.events import Event
from app.scrollback import around
from tests.broker.conftest import build_broker, unique_prefix


def lines(events: list[Event]) -> list[str]:
    return [event.data["line"] for event in events]


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def any_broker(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Broker]:
    if request.param == "redis":
        server = request.getfixturevalue("redis_server")
        created = build_broker(server.url, prefix=unique_prefix(), history=5000)
    elif request.param == "sqlite":
        created = build_broker(f"sqlite:///{tmp_path}/around.db", history=20)
    else:
        created = build_broker("memory://", history=5000)
    await created.start()
    yield created
    await created.close()


async def test_around_is_the_line_and_its_neighbours_on_its_channel(any_broker: Broker) -> None:
    mine: list[Event] = []
    for n in range(60):  # another channel's events between ours: seq is not offset
        mine.append(await any_broker.publish("log.around", "log", {"line": f"mine {n}"}))
        await any_broker.publish("log.other", "log", {"line": f"other {n}"})
    found = await around(any_broker, "log.around", mine[30].id, 5)
    assert found is not None
    assert lines(found.before) == [f"mine {n}" for n in range(25, 30)]
    assert found.event.data["line"] == "mine 30"
    assert lines(found.after) == [f"mine {n}" for n in range(31, 36)]
    edge = await around(any_broker, "log.around", mine[0].id, 3)
    assert edge is not None and (edge.before, lines(edge.after)) == (
        [],
        ["mine 1", "mine 2", "mine 3"],
    )
    newest = await around(any_broker, "log.around", mine[-1].id, 3)
    assert newest is not None and newest.after == [] and len(newest.before) == 3


async def test_around_an_id_that_is_not_there_is_none(any_broker: Broker) -> None:
    first = await any_broker.publish("log.around2", "log", {"line": "a"})
    other = await any_broker.publish("log.other2", "log", {"line": "b"})
    epoch = first.id.rsplit("-", 1)[0]
    assert await around(any_broker, "log.around2", other.id, 3) is None  # another channel's
    assert await around(any_broker, "log.around2", f"{epoch}-999999", 3) is None  # not yet
    assert await around(any_broker, "log.around2", "zz99-1", 3) is None  # another epoch
    assert await around(any_broker, "log.around2", "nonsense", 3) is None
