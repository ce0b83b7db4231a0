"""Failed sign-ins and wrong tokens per address: a few are fine, a flood is refused."""

from __future__ import annotations

from app.ratelimit import RateLimiter
from app.throttle import FailureThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ten_failures_a_minute_then_wait() -> None:
    clock = Clock()
    throttle = FailureThrottle(failures=10, window_s=60, clock=clock)
    assert [throttle.failed("203.0.113.7") for _ in range(9)] == [0.0] * 9
    assert throttle.wait_s("203.0.113.7") == 0.0
    assert throttle.failed("203.0.113.7") == 6.0  # the tenth: one more every 6 s
    assert throttle.wait_s("203.0.113.7") == 6.0
    assert throttle.wait_s("198.51.100.1") == 0.0  # per address
    clock.now += 6
    assert throttle.wait_s("203.0.113.7") == 0.0
    assert throttle.failed("203.0.113.7") == 6.0


def test_refusals_are_logged_once_a_window() -> None:
    clock = Clock()
    throttle = FailureThrottle(failures=1, window_s=60, clock=clock)
    throttle.failed("a")
    assert [throttle.log_refusal("a") for _ in range(3)] == [True, False, False]
    assert throttle.log_refusal("b")
    clock.now += 60
    assert throttle.log_refusal("a")


def test_wait_s_takes_nothing() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1, burst=2, clock=clock)
    assert limiter.wait_s("a") == 0.0
    assert [limiter.acquire("a") for _ in range(2)] == [0.0, 0.0]
    assert limiter.wait_s("a") == 1.0
    assert limiter.wait_s("a") == 1.0
    clock.now += 1
    assert limiter.wait_s("a") == 0.0
    assert limiter.acquire("a") == 0.0
