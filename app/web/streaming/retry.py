"""How long each client waits before reconnecting: spread, so clients do not return together.

Every stream's ``retry:`` is jittered per connection, uniform in
``[retry_ms, 2 * retry_ms]``: clients that lost the server at the same moment
(a proxy restart, a network blip) come back over a window as wide as the
base, not in one burst. At shutdown the server tells each open stream a
fresh ``retry:`` before ending it, uniform in ``SHUTDOWN_RETRY_MS``: a
restart takes a second or two, and 10,000 clients then return at about
2,500/s over four seconds instead of all at once (issue 18, point 3).

Deliberate oddity: both functions take the random draw (``unit`` in
``[0, 1)``) instead of drawing it, so tests pass the ends of the range.
"""

from __future__ import annotations

SHUTDOWN_RETRY_MS = (1000, 5000)
"""The window the ``retry:`` sent at shutdown is drawn from, in milliseconds."""


def jittered_retry_ms(base_ms: int, unit: float) -> int:
    """A stream's ``retry:``: ``base_ms`` plus up to ``base_ms`` more, by ``unit`` in ``[0, 1)``."""
    return base_ms + int(base_ms * _clamped(unit))


def shutdown_retry_ms(unit: float, window: tuple[int, int] = SHUTDOWN_RETRY_MS) -> int:
    """The ``retry:`` told at shutdown: a point of ``window`` chosen by ``unit`` in ``[0, 1)``."""
    low, high = window
    return low + int((high - low) * _clamped(unit))


def _clamped(unit: float) -> float:
    return min(max(unit, 0.0), 0.999_999)
