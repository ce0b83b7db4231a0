"""A lighter event for Hypercorn's per-connection state.

Hypercorn's asyncio worker makes one event per HTTP/1.1 connection
(``H11Protocol.can_read``) through ``WorkerContext.event_class``, the seam by
which its asyncio and trio workers bring their own (``hypercorn.typing.Event``).
Its asyncio one wraps ``asyncio.Event``, which allocates a 760-byte waiter
deque up front: with the wrappers, about 950 bytes of every open connection, 5 %
of an idle stream (docs/performance.md, S1). :class:`LeanEvent` keeps its
waiters in a list made only when somebody waits.

Deliberate oddity: :func:`install` sets a class attribute of Hypercorn's
``WorkerContext`` (pinned in pyproject.toml); it must run before Hypercorn
starts serving, and leaves Hypercorn alone if that attribute is not there.
"""

from __future__ import annotations

import asyncio

from hypercorn.asyncio import worker_context


class LeanEvent:
    """``hypercorn.typing.Event``: set, clear, wait (any number of waiters), is_set."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    async def clear(self) -> None:
        """Unset the event."""
        self._set = False

    async def set(self) -> None:
        """Set the event and wake every waiter."""
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self) -> None:
        """Return once the event is set (at once if it is)."""
        if self._set:
            return
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)

    def is_set(self) -> bool:
        """True from :meth:`set` until :meth:`clear`."""
        return self._set


def install() -> None:
    """Make Hypercorn's asyncio worker create :class:`LeanEvent` events."""
    context_class = getattr(worker_context, "WorkerContext", None)
    if context_class is not None and hasattr(context_class, "event_class"):
        context_class.event_class = LeanEvent
