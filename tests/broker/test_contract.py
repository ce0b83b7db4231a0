"""The broker contract, run unchanged against every backend (memory://, sqlite://, redis://).

Events are awaited through the subscription's ``wake`` (redis:// delivers
through its fan-out reader, a moment after ``publish`` returns), and
``history()`` doubles as a barrier: once it answers, every event published
before it is in the subscriber's rings on both backends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.broker.base import Broker, ChannelLimit, KindConflict, Start
from app.broker.hub import SubscriberLagging
from app.events import Event, parse_event_id
from tests.broker.conftest import BrokerFactory, build_broker, receive, unique_prefix


@pytest.fixture(params=["memory", "sqlite", "redis"])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/broker.db"
    server = request.getfixturevalue("redis_server")
    return str(server.url)


@pytest.fixture
async def make_broker(backend_url: str) -> AsyncIterator[BrokerFactory]:
    """Started brokers of the backend under test, sharing one deployment (key prefix)."""
    brokers: list[Broker] = []
    prefix = unique_prefix()

    async def make(**options: Any) -> Broker:
        url = backend_url
        if url.startswith("sqlite://"):  # a file each, keeping what the rings keep
            url = url.replace(".db", f"{len(brokers)}.db")
            options = {"retention": {"max_events": 0}, **options}
        broker = build_broker(url, prefix=prefix, **options)
        await broker.start()
        brokers.append(broker)
        return broker

    yield make
    for broker in brokers:
        await broker.close()


@pytest.fixture
async def broker(make_broker: BrokerFactory) -> Broker:
    return await make_broker()


def note(number: int) -> dict[str, Any]:
    return {"message": f"message {number}", "level": "info"}


def quote(symbol: str, price: float) -> dict[str, Any]:
    return {"symbol": symbol, "price": price, "change": 0.0, "change_pct": 0.0, "volume": 1}


async def publish_notes(broker: Broker, channel: str, count: int, first: int = 0) -> list[Event]:
    return [await broker.publish(channel, "notify", note(first + n)) for n in range(count)]


async def settled(broker: Broker, channel: str) -> None:
    """Return once every event published so far is in this broker's rings."""
    await broker.history(channel, None, 1)


def ids(events: list[Event]) -> list[str]:
    return [event.id for event in events]


async def test_subscriber_receives_published_events(broker: Broker) -> None:
    async with broker.subscribe(["ops.deploys"], Start()) as sub:
        published = await publish_notes(broker, "ops.deploys", 3)
        received = await receive(sub, 3)
    assert ids(received) == ids(published)
    assert [e.data for e in received] == [note(0), note(1), note(2)]
    assert {(e.channel, e.kind) for e in received} == {("ops.deploys", "notify")}
    assert [e.offset for e in received] == [0, 1, 2]


async def test_ids_are_unique_and_in_publish_order_across_channels(broker: Broker) -> None:
    async with broker.subscribe(["team.*"], Start()) as sub:
        published = []
        for number in range(20):
            channel = "team.a" if number % 3 else "team.b"
            published.append(await broker.publish(channel, "notify", note(number)))
        received = await receive(sub, 20)
    assert ids(received) == ids(published)
    assert len(set(ids(published))) == 20
    seqs = [parse_event_id(event_id) for event_id in ids(published)]
    assert all(parsed is not None for parsed in seqs)
    assert [e.seq for e in received] == sorted(e.seq for e in received)


async def test_resume_after_an_id_gets_exactly_the_missed_events(broker: Broker) -> None:
    published = await publish_notes(broker, "ops.deploys", 5)
    async with broker.subscribe(["ops.deploys"], Start(after=published[1].id)) as sub:
        assert sub.gap_channels == []
        missed = await receive(sub, 3)
        sentinel = await broker.publish("ops.deploys", "notify", note(99))
        (following,) = await receive(sub, 1)
    assert ids(missed) == ids(published[2:])
    assert following.id == sentinel.id


async def test_resume_over_several_channels_keeps_publish_order(broker: Broker) -> None:
    first = await broker.publish("team.a", "notify", note(0))
    published = [
        await broker.publish(f"team.{'ab'[n % 2]}", "notify", note(n + 1)) for n in range(8)
    ]
    async with broker.subscribe(["team.*"], Start(after=first.id)) as sub:
        received = await receive(sub, 8)
    assert ids(received) == ids(published)


async def test_resume_at_the_newest_id_gets_only_live_events(broker: Broker) -> None:
    published = await publish_notes(broker, "ops.deploys", 3)
    async with broker.subscribe(["ops.deploys"], Start(after=published[-1].id)) as sub:
        live = await broker.publish("ops.deploys", "notify", note(3))
        (received,) = await receive(sub, 1)
    assert received.id == live.id


async def test_an_id_of_another_epoch_is_a_gap_then_retained_history(broker: Broker) -> None:
    published = await publish_notes(broker, "ops.deploys", 3)
    async with broker.subscribe(["ops.deploys", "ops.other"], Start(after="zz99-2")) as sub:
        assert sub.gap_channels == ["ops.deploys", "ops.other"]
        received = await receive(sub, 3)
    assert ids(received) == ids(published)


async def test_an_id_beyond_the_newest_is_unknown(broker: Broker) -> None:
    (published,) = await publish_notes(broker, "ops.deploys", 1)
    parsed = parse_event_id(published.id)
    assert parsed is not None
    future = f"{parsed[0]}-{parsed[1] + 1000}"
    async with broker.subscribe(["ops.deploys"], Start(after=future)) as sub:
        assert sub.gap_channels == ["ops.deploys"]


async def test_a_cursor_older_than_the_history_is_a_gap(make_broker: BrokerFactory) -> None:
    broker = await make_broker(history=5)
    published = await publish_notes(broker, "ops.deploys", 12)
    async with broker.subscribe(["ops.deploys"], Start(after=published[2].id)) as sub:
        assert sub.gap_channels == ["ops.deploys"]
        received = await receive(sub, 5)
    assert ids(received) == ids(published[-5:])


async def test_a_cursor_just_before_the_retained_events_is_no_gap(
    make_broker: BrokerFactory,
) -> None:
    broker = await make_broker(history=5)
    published = await publish_notes(broker, "ops.deploys", 12)
    async with broker.subscribe(["ops.deploys"], Start(after=published[6].id)) as sub:
        assert sub.gap_channels == []
        received = await receive(sub, 5)
    assert ids(received) == ids(published[7:])


async def test_history_n_replays_the_newest_n_then_live(broker: Broker) -> None:
    published = await publish_notes(broker, "ops.deploys", 10)
    async with broker.subscribe(["ops.deploys"], Start(history=3)) as sub:
        replayed = await receive(sub, 3)
        live = await broker.publish("ops.deploys", "notify", note(10))
        (received,) = await receive(sub, 1)
    assert ids(replayed) == ids(published[-3:])
    assert received.id == live.id


async def test_a_fresh_connect_without_history_gets_only_live_events(broker: Broker) -> None:
    await publish_notes(broker, "ops.deploys", 3)
    async with broker.subscribe(["ops.deploys"], Start()) as sub:
        assert sub.take() == []
        live = await broker.publish("ops.deploys", "notify", note(3))
        (received,) = await receive(sub, 1)
    assert received.id == live.id


async def test_a_snapshot_start_hands_recent_events_to_the_caller(broker: Broker) -> None:
    published = [
        await broker.publish("chat.lobby", "chat", {"user": "ann", "text": f"hi {n}"})
        for n in range(60)
    ]
    async with broker.subscribe(["chat.lobby"], Start(snapshot=True)) as sub:
        assert ids(sub.snapshots["chat.lobby"]) == ids(published[-50:])
        assert sub.take() == []
        live = await broker.publish("chat.lobby", "chat", {"user": "bob", "text": "new"})
        (received,) = await receive(sub, 1)
    assert received.id == live.id


async def test_a_snapshot_start_after_a_gap_snapshots_the_gap_channels(broker: Broker) -> None:
    published = await publish_notes(broker, "ops.deploys", 3)
    async with broker.subscribe(["ops.deploys"], Start(after="zz99-1", snapshot=True)) as sub:
        assert sub.gap_channels == ["ops.deploys"]
        assert ids(sub.snapshots["ops.deploys"]) == ids(published)
        assert sub.take() == []


async def test_a_snapshot_resume_further_back_than_the_cap_gets_a_snapshot(broker: Broker) -> None:
    """A page cut for lagging reconnects with its old cursor: no endless replay (chat cap 200)."""
    first = await broker.publish("chat.far", "chat", {"user": "ann", "text": "first"})
    published = [
        await broker.publish("chat.far", "chat", {"user": "ann", "text": f"hi {n}"})
        for n in range(201)
    ]
    async with broker.subscribe(["chat.far"], Start(after=first.id, snapshot=True)) as sub:
        assert sub.gap_channels == ["chat.far"]
        assert ids(sub.snapshots["chat.far"]) == ids(published[-50:])
        assert sub.take() == []
    async with broker.subscribe(["chat.far"], Start(after=published[-10].id, snapshot=True)) as sub:
        assert sub.gap_channels == [] and "chat.far" not in sub.snapshots
        assert ids(await receive(sub, 9)) == ids(published[-9:])


async def test_a_pattern_picks_up_channels_created_later(broker: Broker) -> None:
    async with broker.subscribe(["log.*"], Start()) as sub:
        line = {"line": "started", "file": "new.log", "level": "info"}
        created = await broker.publish("log.new", "log", line)
        await broker.publish("other.new", "notify", note(0))
        sentinel = await broker.publish("log.newer", "log", line)
        received = await receive(sub, 2)
    assert ids(received) == [created.id, sentinel.id]


async def test_a_subscriber_beyond_max_lag_is_cut(make_broker: BrokerFactory) -> None:
    broker = await make_broker(max_lag=5)
    async with broker.subscribe(["ops.deploys"], Start()) as sub:
        await publish_notes(broker, "ops.deploys", 10)
        await settled(broker, "ops.deploys")
        with pytest.raises(SubscriberLagging):
            sub.take()


async def test_a_latest_value_channel_conflates_instead_of_cutting(
    make_broker: BrokerFactory,
) -> None:
    broker = await make_broker(max_lag=3)
    async with broker.subscribe(["ticker"], Start()) as sub:
        for step in range(10):
            await broker.publish("ticker", "ticker", quote("ACME" if step % 2 else "INIT", step))
        await settled(broker, "ticker")
        received = sub.take()
    assert [(e.data["symbol"], e.data["price"]) for e in received] == [("INIT", 8), ("ACME", 9)]


async def test_history_pages_through_retained_events(broker: Broker) -> None:
    published = await publish_notes(broker, "ops.deploys", 10)
    first = await broker.history("ops.deploys", None, 4)
    second = await broker.history("ops.deploys", published[3].id, 4)
    last = await broker.history("ops.deploys", published[-1].id, 4)
    assert (ids(first.events), first.gap) == (ids(published[:4]), False)
    assert (ids(second.events), second.gap) == (ids(published[4:8]), False)
    assert (last.events, last.gap) == ([], False)


async def test_history_after_an_unknown_or_trimmed_id_is_a_gap(make_broker: BrokerFactory) -> None:
    broker = await make_broker(history=5)
    published = await publish_notes(broker, "ops.deploys", 8)
    unknown = await broker.history("ops.deploys", "zz99-3", 10)
    trimmed = await broker.history("ops.deploys", published[0].id, 10)
    assert (ids(unknown.events), unknown.gap) == (ids(published[3:]), True)
    assert (ids(trimmed.events), trimmed.gap) == (ids(published[3:]), True)
    missing = await broker.history("no.such", None, 10)
    assert (missing.events, missing.gap) == ([], False)


async def test_before_pages_back_to_the_start_of_retention(make_broker: BrokerFactory) -> None:
    broker = await make_broker(history=7)
    published = await publish_notes(broker, "ops.deploys", 10)
    newest = await broker.before("ops.deploys", None, 3)
    older = await broker.before("ops.deploys", published[7].id, 3)
    oldest = await broker.before("ops.deploys", published[4].id, 3)
    start = await broker.before("ops.deploys", published[3].id, 3)
    assert (ids(newest.events), newest.gap) == (ids(published[7:]), False)
    assert (ids(older.events), older.gap) == (ids(published[4:7]), False)
    assert (ids(oldest.events), oldest.gap) == (ids(published[3:4]), False)
    assert (start.events, start.gap) == ([], False)


async def test_before_a_trimmed_id_is_the_start_an_unknown_one_a_gap(
    make_broker: BrokerFactory,
) -> None:
    broker = await make_broker(history=5)
    published = await publish_notes(broker, "ops.deploys", 8)
    trimmed = await broker.before("ops.deploys", published[1].id, 10)
    unknown = await broker.before("ops.deploys", "zz99-3", 10)
    missing = await broker.before("no.such", None, 10)
    assert (trimmed.events, trimmed.gap) == ([], False)
    assert (unknown.events, unknown.gap) == ([], True)
    assert (missing.events, missing.gap) == ([], False)


async def test_channels_lists_kind_subscribers_last_id_and_retained(
    make_broker: BrokerFactory,
) -> None:
    broker = await make_broker(history=5)
    await broker.declare("ops.empty", "notify")
    published = await publish_notes(broker, "ops.deploys", 7)
    both, one = broker.subscribe(["ops.*"], Start()), broker.subscribe(["ops.deploys"], Start())
    async with both as sub, one:
        await settled(broker, "ops.deploys")
        listed = {info.name: info.as_json_dict() for info in broker.channels()}
        assert sub.take() == []
    assert listed == {
        "ops.deploys": {
            "name": "ops.deploys",
            "kind": "notify",
            "subscribers": 2,
            "last_id": published[-1].id,
            "retained": 5,
        },
        "ops.empty": {
            "name": "ops.empty",
            "kind": "notify",
            "subscribers": 1,
            "last_id": None,
            "retained": 0,
        },
    }
    assert [info.subscribers for info in broker.channels()] == [0, 0]


async def test_a_channel_keeps_its_first_kind(broker: Broker) -> None:
    await broker.declare("chat.lobby", "chat")
    await broker.declare("chat.lobby", "chat")
    await broker.publish("ops.deploys", "notify", note(0))
    with pytest.raises(KindConflict) as conflict:
        await broker.publish("chat.lobby", "notify", note(1))
    assert (conflict.value.channel, conflict.value.kind) == ("chat.lobby", "chat")
    with pytest.raises(KindConflict):
        await broker.declare("ops.deploys", "chat")
    assert await broker.kind_of("chat.lobby") == "chat"
    assert await broker.kind_of("ops.deploys") == "notify"
    assert await broker.kind_of("no.such") is None


async def test_a_refused_publish_assigns_no_id(broker: Broker) -> None:
    first = await broker.publish("ops.deploys", "notify", note(0))
    with pytest.raises(KindConflict):
        await broker.publish("ops.deploys", "chat", {"user": "ann", "text": "hi"})
    second = await broker.publish("ops.deploys", "notify", note(1))
    assert second.seq == first.seq + 1
    assert second.offset == first.offset + 1


async def test_close_ends_every_subscription(broker: Broker) -> None:
    async with broker.subscribe(["ops.deploys"], Start()) as sub:
        await broker.close()
        assert sub.closed_reason is not None
        assert sub.wake.is_set()


# -- channel bounds (issue 12, point 4) --------------------------------------

DAY_S = 86400.0


async def test_a_new_channel_beyond_max_channels_is_refused_declared_ones_always_exist(
    make_broker: BrokerFactory,
) -> None:
    broker = await make_broker(limits={"max_channels": 2})
    await broker.declare("chat.lobby", "chat")
    await broker.declare("ops.deploys", "notify")
    await broker.publish("a.one", "notify", note(1))
    await broker.publish("a.two", "notify", note(2))
    with pytest.raises(ChannelLimit) as refused:
        await broker.publish("a.three", "notify", note(3))
    assert "limits.max_channels" in str(refused.value)
    assert await broker.kind_of("a.three") is None
    await broker.publish("a.two", "notify", note(4))
    await broker.publish("ops.deploys", "notify", note(5))
    await broker.declare("ops.later", "notify")
    await broker.publish("ops.later", "notify", note(6))
    await settled(broker, "a.two")
    names = [info.name for info in broker.channels()]
    assert names == ["a.one", "a.two", "chat.lobby", "ops.deploys", "ops.later"]


async def test_idle_undeclared_channels_are_swept_and_make_room(
    make_broker: BrokerFactory,
) -> None:
    broker = await make_broker(limits={"max_channels": 3, "channel_idle_ttl": "7d"})
    await broker.declare("ops.deploys", "notify")
    for channel in ("a.idle", "a.busy", "a.watched"):
        await broker.publish(channel, "notify", note(0))
    await settled(broker, "a.watched")
    start = 1000.0
    async with broker.subscribe(["a.watched"], Start()):
        assert await broker.sweep(start) == []
        await broker.publish("a.busy", "notify", note(1))
        await settled(broker, "a.busy")
        assert await broker.sweep(start + 6 * DAY_S) == []
        assert await broker.sweep(start + 7 * DAY_S) == ["a.idle"]
        assert await broker.sweep(start + 13 * DAY_S) == ["a.busy"]
    assert await broker.kind_of("a.idle") is None
    assert (await broker.history("a.idle", None, 10)).events == []
    assert [info.name for info in broker.channels()] == ["a.watched", "ops.deploys"]
    await broker.publish("a.new", "notify", note(2))
    await broker.publish("a.idle", "notify", note(3))
    with pytest.raises(ChannelLimit):
        await broker.publish("a.third", "notify", note(4))


async def test_a_declared_channel_is_never_swept(broker: Broker) -> None:
    await broker.declare("ops.deploys", "notify")
    await broker.publish("ops.deploys", "notify", note(0))
    await settled(broker, "ops.deploys")
    assert await broker.sweep(0.0) == []
    assert await broker.sweep(100 * DAY_S) == []
    assert [info.name for info in broker.channels()] == ["ops.deploys"]


async def test_a_cursor_from_before_a_sweep_gets_a_gap_on_the_name_used_again(
    make_broker: BrokerFactory,
) -> None:
    broker = await make_broker(limits={"channel_idle_ttl": "1h"})
    old = await publish_notes(broker, "a.gone", 3)
    await settled(broker, "a.gone")
    assert await broker.sweep(0.0) == []
    assert await broker.sweep(3600.0) == ["a.gone"]
    again = await publish_notes(broker, "a.gone", 2, first=10)
    async with broker.subscribe(["a.gone"], Start(after=old[0].id)) as sub:
        received = await receive(sub, 2)
    assert sub.gap_channels == ["a.gone"]
    assert ids(received) == ids(again)
    async with broker.subscribe(["a.gone"], Start(after=again[0].id)) as sub:
        assert ids(await receive(sub, 1)) == ids(again[1:])
    assert sub.gap_channels == []


async def test_channels_page_by_name(broker: Broker) -> None:
    for channel in ("b.two", "a.one", "c.three", "b.one"):
        await broker.publish(channel, "notify", note(0))
    await settled(broker, "c.three")
    assert [i.name for i in broker.channels(limit=2)] == ["a.one", "b.one"]
    assert [i.name for i in broker.channels(after="b.one", limit=2)] == ["b.two", "c.three"]
    assert [i.name for i in broker.channels(after="b.0")] == ["b.one", "b.two", "c.three"]
    visible = [i.name for i in broker.channels(visible=lambda name: name.startswith("b."))]
    assert visible == ["b.one", "b.two"]
    async with broker.subscribe(["b.*"], Start()), broker.subscribe(["b.one", "c.three"], Start()):
        assert broker.subscriber_counts(["b.one", "b.two", "a.none"]) == {"b.one": 2, "b.two": 1}
        assert broker.follows() == 4
    assert broker.follows() == 0
    assert broker.subscriber_counts(["a.one", "c.three"]) == {"a.one": 0, "c.three": 0}


async def test_since_starts_history_and_subscriptions_at_a_time(broker: Broker) -> None:
    published = await publish_notes(broker, "ops.deploys", 6)
    since = published[3].time
    expected = ids([event for event in published if event.time >= since])
    assert expected[-3:] == ids(published[3:])
    page = await broker.history("ops.deploys", None, 100, since=since)
    assert ids(page.events) == expected
    after = await broker.history("ops.deploys", published[4].id, 100, since=since)
    assert ids(after.events) == ids(published[5:])
    assert (await broker.history("ops.deploys", None, 100, since=since + 3600)).events == []
    async with broker.subscribe(["ops.deploys"], Start(since=since)) as sub:
        replayed = await receive(sub, len(expected))
    assert ids(replayed) == expected


async def test_a_fresh_connect_hands_over_the_latest_value_per_key(broker: Broker) -> None:
    for step in range(6):
        await broker.publish("ticker", "ticker", quote("ACME" if step % 2 else "INIT", step))
    await settled(broker, "ticker")
    async with broker.subscribe(["ticker"], Start()) as sub:
        latest = [(e.data["symbol"], e.data["price"]) for e in sub.snapshots["ticker"]]
        assert sub.take() == []
    assert latest == [("INIT", 4), ("ACME", 5)]


async def test_state_is_stored_with_an_event_and_loaded_by_prefix(broker: Broker) -> None:
    channel = f"{unique_prefix()}.checkpointed"
    await broker.publish(channel, "notify", note(1), {"demo:a": "1", "other:x": "9"})
    await broker.publish_many(channel, "notify", [note(2), note(3)], {"demo:a": "3"})
    await broker.save_state({"demo:b": "b", "other:x": None})
    assert await broker.load_state("demo:") == {"demo:a": "3", "demo:b": "b"}
    assert await broker.load_state("other:") == {}
    await broker.save_state({"demo:a": None})
    assert await broker.load_state("demo:") == {"demo:b": "b"}


async def test_a_batch_gets_consecutive_ids_in_order_and_its_subscribers_all_of_it(
    broker: Broker,
) -> None:
    async with broker.subscribe(["ops.batch"], Start()) as sub:
        first = await broker.publish("ops.batch", "notify", note(0))
        batch = await broker.publish_many("ops.batch", "notify", [note(n) for n in range(1, 51)])
        received = await receive(sub, 51)
    assert ids(received) == ids([first, *batch])
    assert [event.seq for event in batch] == list(range(first.seq + 1, first.seq + 51))
    assert [event.offset for event in batch] == list(range(1, 51))
    assert [event.data for event in received] == [note(n) for n in range(51)]


async def test_a_batch_on_a_channel_of_another_kind_is_refused_and_assigns_no_id(
    broker: Broker,
) -> None:
    first = await broker.publish("ops.batch2", "notify", note(0))
    chats = [{"user": "ann", "text": f"hi {n}"} for n in range(3)]
    with pytest.raises(KindConflict):
        await broker.publish_many("ops.batch2", "chat", chats)
    second = await broker.publish("ops.batch2", "notify", note(1))
    assert (second.seq, second.offset) == (first.seq + 1, first.offset + 1)
