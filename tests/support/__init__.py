"""Helpers the tests share."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on a fresh loop in a thread of its own.

    A sync test cannot call ``asyncio.run`` once Playwright's sync API has run
    in the same thread: it leaves that thread marked as running a loop.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
