"""Bounded waits for states that no event announces (another process, a counter, a file).

Where something can be awaited (a collector's event, a stream's frames), tests
await it instead; these poll, every 20 ms, and fail naming what never happened.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

POLL_S = 0.02

T = TypeVar("T")


def wait_until(check: Callable[[], bool], what: str, within_s: float = 30.0) -> None:
    """Return once ``check()`` is true; fail after ``within_s`` seconds."""
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {within_s} s")
        time.sleep(POLL_S)


async def until(check: Callable[[], bool], what: str, within_s: float = 30.0) -> None:
    """Return once ``check()`` is true, without blocking the loop; fail after ``within_s``."""
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {within_s} s")
        await asyncio.sleep(POLL_S)


async def answer(
    ask: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    what: str,
    within_s: float = 30.0,
    every_s: float = POLL_S,
) -> T:
    """``ask()``'s first answer that is ``done``: a state only a request shows (a server's
    history, its ``/readyz``, a Redis key); fail after ``within_s`` showing the last answer."""
    deadline = time.monotonic() + within_s
    while True:
        last = await ask()
        if done(last):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {within_s} s; the last answer: {last!r:.500}")
        await asyncio.sleep(every_s)
