"""Throttling of failed sign-ins and wrong bearer tokens, per client address.

Without it one address tried 3,000 wrong tokens in 10 s, each logged. Here an
address gets ``failures`` wrong guesses per ``window_s`` (a token bucket, so a
typo or two never locks anyone out); past that, every attempt carrying a token
is refused with 429 *before* the token is compared, so a throttled guesser
learns nothing, not even from a right guess. Requests with a session cookie
are not attempts and are never throttled.

Log lines are bounded too: each counted failure is logged (at most
``failures`` per window), refusals once per window per address.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from app.ratelimit import RateLimiter

FAILURES = 10
WINDOW_S = 60.0


class FailureThrottle:
    """At most ``failures`` failed attempts per ``window_s`` per client, then 429s.

    Example:
        >>> throttle = FailureThrottle(failures=2, window_s=60)
        >>> throttle.failed("203.0.113.7"), throttle.failed("203.0.113.7")
        (0.0, 0.0)
        >>> throttle.wait_s("203.0.113.7") > 0
        True
    """

    def __init__(
        self,
        failures: int = FAILURES,
        window_s: float = WINDOW_S,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._failures = RateLimiter(failures / window_s, failures, clock=clock)
        self._refusal_logs = RateLimiter(1 / window_s, 1, clock=clock)

    def wait_s(self, client: str) -> float:
        """Seconds before ``client`` may try a token again; 0.0 when it may now."""
        return self._failures.wait_s(client)

    def failed(self, client: str) -> float:
        """Count one failed attempt; the seconds ``client`` must now wait (0.0: none yet)."""
        self._failures.acquire(client)
        return self.wait_s(client)

    def log_refusal(self, client: str) -> bool:
        """True for the first refusal of ``client`` in a window: log that one, not the rest."""
        return self._refusal_logs.acquire(client) == 0.0
