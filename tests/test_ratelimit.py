"""The token bucket behind chat_rate/chat_burst and publish_rate/publish_burst."""

from __future__ import annotations

import pytest

from app.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_allowed_then_the_next_request_waits_for_one_token() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2, burst=10, clock=clock)
    assert [limiter.acquire("a") for _ in range(10)] == [0.0] * 10
    assert limiter.acquire("a") == pytest.approx(0.5)


def test_tokens_come_back_at_the_rate_and_never_beyond_the_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2, burst=3, clock=clock)
    for _ in range(3):
        limiter.acquire("a")
    clock.now += 0.5
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") == pytest.approx(0.5)
    clock.now += 3600
    assert [limiter.acquire("a") for _ in range(4)] == [0.0, 0.0, 0.0, pytest.approx(0.5)]


def test_a_refused_request_takes_nothing() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1, burst=1, clock=clock)
    limiter.acquire("a")
    for _ in range(100):
        assert limiter.acquire("a") == pytest.approx(1.0)
    clock.now += 1.0
    assert limiter.acquire("a") == 0.0


def test_clients_have_separate_buckets() -> None:
    limiter = RateLimiter(rate=1, burst=1, clock=Clock())
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("b") == 0.0
    assert limiter.acquire("a") > 0


def test_idle_clients_are_forgotten_so_memory_stays_bounded() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=10, burst=10, clock=clock, max_clients=100)
    for client in range(100):
        limiter.acquire(f"10.0.0.{client}")
    clock.now += 1.0  # every bucket has refilled: the same as no bucket
    limiter.acquire("late")
    assert len(limiter) == 1


def test_busy_clients_are_remembered_past_max_clients() -> None:
    limiter = RateLimiter(rate=1, burst=1, clock=Clock(), max_clients=2)
    for client in ("a", "b", "c"):
        limiter.acquire(client)
    assert [limiter.acquire(client) > 0 for client in ("a", "b", "c")] == [True] * 3


@pytest.mark.parametrize(("rate", "burst", "named"), [(0, 1, "rate"), (1, 0, "burst")])
def test_bad_limits_are_refused_naming_the_key(rate: float, burst: int, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        RateLimiter(rate=rate, burst=burst)
