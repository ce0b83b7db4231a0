"""A subscription as its consumers see it: direct delivery that cannot fail the publisher,
and ``next_batch``, the one consuming loop of streams and alerts."""

from __future__ import annotations

import asyncio

import pytest

from app.broker.hub import ChannelLog, Hub, SubscriberLagging, Subscription
from app.events import Event, KindRegistry

WAIT_S = 10.0


def event(offset: int) -> Event:
    return Event(f"e-{offset + 1}", "a.b", "notify", 0.0, {"message": "m"}, offset + 1, offset)


def following(hub: Hub, log: ChannelLog) -> Subscription:
    subscription = hub.open(["a.b"])
    subscription.follow(log, log.next_offset)
    return subscription


def test_a_parked_subscriber_that_raises_is_woken_and_the_others_still_get_the_frame() -> None:
    hub = Hub(KindRegistry(), history_size=10, max_lag=10)
    log = hub.log("a.b", "notify")
    broken, healthy, bad_encoder = (following(hub, log) for _ in range(3))
    frames: list[bytes] = []

    def fail(frame: bytes, one: Event) -> bool:
        raise RuntimeError("a stream's bug")

    def take(frame: bytes, one: Event) -> bool:
        frames.append(frame)
        return True

    def refuse(one: Event) -> bytes:
        raise ValueError("cannot encode")

    broken.park(lambda one: b"frame", fail)
    healthy.park(lambda one: b"frame", take)
    bad_encoder.park(refuse, take)
    log.append(event(0))  # must not raise into the publisher
    assert frames == [b"frame"]
    assert healthy.cursors[log] == 1 and not healthy.wake.is_set()
    for woken in (broken, bad_encoder):
        assert woken.deliver is None and woken.wake.is_set()
        assert woken.take() == [log.get(0)]


def test_an_empty_frame_moves_a_parked_subscriber_on_without_a_delivery() -> None:
    hub = Hub(KindRegistry(), history_size=10, max_lag=10)
    log = hub.log("a.b", "notify")
    subscription = following(hub, log)
    handed: list[tuple[bytes, int]] = []

    def take(frame: bytes, one: Event) -> bool:
        handed.append((frame, one.offset))
        return True

    subscription.park(lambda one: b"kept" if one.offset % 2 else b"", take)
    for offset in range(4):
        log.append(event(offset))
    assert handed == [(b"kept", 1), (b"kept", 3)]
    assert subscription.cursors[log] == 4
    assert subscription.deliver is not None and not subscription.wake.is_set()


async def test_next_batch_takes_what_is_new_and_stays_woken_after_a_full_batch() -> None:
    hub = Hub(KindRegistry(), history_size=10, max_lag=10)
    log = hub.log("a.b", "notify")
    subscription = following(hub, log)
    for offset in range(3):
        log.append(event(offset))
    async with asyncio.timeout(WAIT_S):
        assert [e.offset for e in await subscription.next_batch(2)] == [0, 1]
        assert subscription.wake.is_set()
        assert [e.offset for e in await subscription.next_batch(2)] == [2]
        assert not subscription.wake.is_set()


async def test_next_batch_returns_empty_when_interrupted_timed_out_or_closed() -> None:
    hub = Hub(KindRegistry(), history_size=10, max_lag=10)
    subscription = following(hub, hub.log("a.b", "notify"))
    async with asyncio.timeout(WAIT_S):
        waiting = asyncio.create_task(subscription.next_batch())
        await asyncio.sleep(0)  # one turn of the loop, not a wait: the task is in its wait
        subscription.interrupt()
        assert await waiting == []
        assert await subscription.next_batch(timeout_s=0.0) == []
        hub.end_all("shutdown")
        assert await subscription.next_batch() == []
    assert subscription.closed_reason == "shutdown"


async def test_next_batch_raises_when_the_subscriber_fell_past_max_lag() -> None:
    hub = Hub(KindRegistry(), history_size=100, max_lag=3)
    log = hub.log("a.b", "notify")
    subscription = following(hub, log)
    for offset in range(5):
        log.append(event(offset))
    with pytest.raises(SubscriberLagging):
        await asyncio.wait_for(subscription.next_batch(), WAIT_S)
