"""The event Hypercorn's connections are given (``hypercorn.typing.Event``)."""

from __future__ import annotations

import asyncio

from hypercorn.asyncio.worker_context import WorkerContext

from app.web.hypercorn_event import LeanEvent, install


async def test_set_wakes_every_waiter_and_clear_rearms() -> None:
    event = LeanEvent()
    waiters = [asyncio.ensure_future(event.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(waiter.done() for waiter in waiters)
    await event.set()
    await asyncio.wait_for(asyncio.gather(*waiters), 10)
    assert event.is_set()
    await event.wait()  # already set: at once
    await event.clear()
    again = asyncio.ensure_future(event.wait())
    await asyncio.sleep(0)
    assert not again.done()
    await event.set()
    await asyncio.wait_for(again, 10)


async def test_a_cancelled_waiter_is_forgotten_and_others_still_wake() -> None:
    event = LeanEvent()
    cancelled = asyncio.ensure_future(event.wait())
    kept = asyncio.ensure_future(event.wait())
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    assert event._waiters is not None and len(event._waiters) == 1
    await event.set()
    await asyncio.wait_for(kept, 10)


def test_install_makes_hypercorn_workers_use_it() -> None:
    install()
    context = WorkerContext(max_requests=None)
    assert isinstance(context.terminated, LeanEvent)
