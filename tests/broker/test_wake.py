"""The subscriber's wake flag (``asyncio.Event`` for one waiter, without its eager deque)."""

from __future__ import annotations

import asyncio

from app.broker.hub import Wake


async def test_wait_returns_at_once_when_set_and_after_set_otherwise() -> None:
    wake = Wake()
    wake.set()
    await asyncio.wait_for(wake.wait(), 10)
    wake.clear()
    assert not wake.is_set()
    waiting = asyncio.ensure_future(wake.wait())
    await asyncio.sleep(0)  # one turn of the loop, not a wait: the waiter is in its wait()
    assert not waiting.done()
    wake.set()
    await asyncio.wait_for(waiting, 10)
    assert wake.is_set()


async def test_a_cancelled_wait_leaves_the_flag_usable() -> None:
    wake = Wake()
    with_timeout = asyncio.wait_for(wake.wait(), 0.01)
    try:
        await with_timeout
    except TimeoutError:
        pass
    else:
        raise AssertionError("wait returned although nothing set the flag")
    wake.set()
    await asyncio.wait_for(wake.wait(), 10)
