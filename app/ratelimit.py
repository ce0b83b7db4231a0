"""Token buckets keyed by client: the gateway's per-client publish and chat limits.

Pure bookkeeping with an injectable clock, so tests drive time by hand. A
refused request answers how long to wait (the HTTP ``Retry-After``) and takes
nothing, so a refused request changes nothing.

Deliberate oddity: a bucket that has refilled completely is the same as no
bucket, so idle clients are forgotten once ``max_clients`` is exceeded; memory
stays bounded however many addresses knock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``rate`` requests per second per client, with bursts of up to ``burst``.

    Example:
        >>> limiter = RateLimiter(rate=2, burst=10)
        >>> limiter.acquire("203.0.113.7")  # 0.0: allowed
        0.0
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate: must be positive, got {rate!r}")
        if burst < 1:
            raise ValueError(f"burst: must be at least 1, got {burst!r}")
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, client: str, cost: float = 1.0) -> float:
        """Take ``cost`` tokens for ``client``: 0.0 when allowed, else the seconds to wait."""
        now = self.clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            self._forget_idle(now)
            bucket = self._buckets[client] = _Bucket(float(self.burst), now)
        self._refill(bucket, now)
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0.0
        return (cost - bucket.tokens) / self.rate

    def wait_s(self, client: str, cost: float = 1.0) -> float:
        """Seconds until ``client`` could take ``cost`` tokens (0.0: now), taking nothing."""
        bucket = self._buckets.get(client)
        if bucket is None:
            return 0.0
        self._refill(bucket, self.clock())
        return max(0.0, (cost - bucket.tokens) / self.rate)

    def __len__(self) -> int:
        return len(self._buckets)

    def _refill(self, bucket: _Bucket, now: float) -> None:
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
        bucket.updated = now

    def _forget_idle(self, now: float) -> None:
        if len(self._buckets) < self.max_clients:
            return
        full_after = self.burst / self.rate
        idle = [key for key, b in self._buckets.items() if now - b.updated >= full_after]
        for key in idle:
            del self._buckets[key]
