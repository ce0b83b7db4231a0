"""The webhook outbox: each alert's POST is stored before it is tried, and retried until done.

An entry (``outbox:<Idempotency-Key>`` in the broker's state, JSON) is
written with the alert's notify event, before the first attempt, and deleted
when the receiver answers 2xx or when the delivery is given up. A process
that starts (or takes over the lease on redis://) loads the entries and
resumes them, so a receiver sees each alert at least once, and a second time
only after a crash between its 2xx and the deletion, under the same
``Idempotency-Key``.

Deliberate oddities:
- A 4xx other than 408 and 429 is given up at once: the receiver refused
  this body, and it will refuse it again.
- Retries wait between half and all of ``2^(attempt-1)`` seconds, at most
  5 min: the jitter keeps deliveries that failed together (a receiver's
  outage) from all coming back at the same instant.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from app.events import State

log = logging.getLogger("pulseboard.alerts")

PREFIX = "outbox:"
RETRY_BASE_S = 1.0
RETRY_CAP = 300  # the longest wait, in retry bases: 5 min
SaveState = Callable[[State], Awaitable[bool]]


@dataclass
class Delivery:
    """One webhook POST to make; ``key`` is its ``Idempotency-Key`` (times are UNIX times)."""

    key: str
    url: str
    format: str
    body: Any
    max_age_s: float
    first_at: float
    next_at: float
    attempts: int = 0

    @property
    def state_key(self) -> str:
        """Where the broker's state keeps it."""
        return PREFIX + self.key

    def to_json(self) -> str:
        """The stored form."""
        fields = asdict(self)
        del fields["key"]
        return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, state_key: str, text: str) -> Delivery | None:
        """A stored entry, or None when it is not one (then it is dropped, and said so)."""
        try:
            delivery = cls(key=state_key.removeprefix(PREFIX), **json.loads(text))
            times = (delivery.max_age_s, delivery.first_at, delivery.next_at)
            if not isinstance(delivery.url, str) or not isinstance(delivery.attempts, int):
                raise TypeError("url or attempts of the wrong type")
            if not all(isinstance(value, int | float) for value in times):
                raise TypeError("a time of the wrong type")
            return delivery
        except (ValueError, TypeError) as error:
            log.warning("webhook outbox: dropping unreadable entry %s: %s", state_key, error)
            return None


def retry_delay(attempt: int, jitter: float, base_s: float = RETRY_BASE_S) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1, 2, …); ``jitter`` in [0, 1).

    >>> retry_delay(1, 0.0), retry_delay(1, 0.999), retry_delay(4, 0.0), retry_delay(30, 0.0)
    (0.5, 0.9995, 4.0, 150.0)
    """
    doubling: int = min(RETRY_CAP, 2 ** min(attempt - 1, 30))
    return base_s * doubling * (0.5 + jitter / 2)


def next_attempt(delivery: Delivery, now: float, delay: float) -> float | None:
    """When to try again, or None when that is past the delivery's ``max_age_s``: give up.

    >>> d = Delivery("k", "http://h/", "json", {}, max_age_s=60, first_at=0.0, next_at=0.0)
    >>> next_attempt(d, now=30.0, delay=20.0), next_attempt(d, now=50.0, delay=20.0)
    (50.0, None)
    """
    at = now + delay
    return at if at <= delivery.first_at + delivery.max_age_s else None


async def post_once(client: httpx.AsyncClient, delivery: Delivery) -> tuple[str | None, bool]:
    """POST once: (None, _) on a 2xx or 3xx, else (why it failed, whether a retry may help)."""
    headers = {"Idempotency-Key": delivery.key}
    try:
        response = await client.post(delivery.url, json=delivery.body, headers=headers)
    except httpx.HTTPError as error:
        return f"{type(error).__name__}: {error}", True
    status = response.status_code
    if status >= 400:
        return f"HTTP {status}", status >= 500 or status in (408, 429)
    return None, False


@dataclass
class OutboxStats:
    """What /metrics and the logs report: deliveries pending, made and given up."""

    pending: int = 0
    sent: int = 0
    given_up: int = 0


class Outbox:
    """Runs each stored delivery as a task: POST, back off, store progress, forget when done."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        save: SaveState,
        *,
        retry_base_s: float = RETRY_BASE_S,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
        stats: OutboxStats | None = None,
    ) -> None:
        self.client = client
        self.save = save
        self.retry_base_s = retry_base_s
        self.clock = clock
        self.jitter = jitter
        self.stats = stats or OutboxStats()  # a process's engines may share one
        self._tasks: set[asyncio.Task[None]] = set()

    def new(self, key: str, url: str, fmt: str, body: Any, max_age_s: float) -> Delivery:
        """A delivery due now, not stored yet (the caller stores it with the alert)."""
        now = self.clock()
        return Delivery(key, url, fmt, body, max_age_s, first_at=now, next_at=now)

    def start(self, delivery: Delivery) -> None:
        """Run ``delivery`` (already stored, or stored as well as the broker allowed)."""
        self.stats.pending += 1
        task = asyncio.create_task(self._deliver(delivery), name=f"webhook {delivery.key}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def resume(self, stored: dict[str, str]) -> int:
        """Start every stored delivery (``load_state(PREFIX)``); how many there were."""
        read = {key: Delivery.from_json(key, text) for key, text in sorted(stored.items())}
        unreadable = [key for key, delivery in read.items() if delivery is None]
        if unreadable:
            await self._store(dict.fromkeys(unreadable))
        deliveries = [delivery for delivery in read.values() if delivery is not None]
        for delivery in deliveries:
            self.start(delivery)
        return len(deliveries)

    async def drain(self, timeout_s: float) -> None:
        """Give POSTs ``timeout_s`` to end, then cancel the rest (they stay stored)."""
        if not self._tasks:
            return
        _done, pending = await asyncio.wait(self._tasks, timeout=timeout_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _deliver(self, delivery: Delivery) -> None:
        try:
            while True:
                await asyncio.sleep(max(0.0, delivery.next_at - self.clock()))
                outcome, retry = await post_once(self.client, delivery)
                delivery.attempts += 1
                if outcome is None:
                    self.stats.sent += 1
                    break
                now = self.clock()
                delay = retry_delay(delivery.attempts, self.jitter(), self.retry_base_s)
                at = next_attempt(delivery, now, delay) if retry else None
                if at is None:
                    self._give_up(delivery, outcome, retry)
                    break
                log.info(
                    "webhook %s attempt %d failed (%s); retrying in %.1fs",
                    delivery.url,
                    delivery.attempts,
                    outcome,
                    delay,
                )
                delivery.next_at = at
                await self._store({delivery.state_key: delivery.to_json()})
            await self._store({delivery.state_key: None})
        finally:
            self.stats.pending -= 1

    def _give_up(self, delivery: Delivery, outcome: str, retry: bool) -> None:
        self.stats.given_up += 1
        why = f"older than {delivery.max_age_s:g}s" if retry else "not retried"
        log.warning(
            "webhook %s given up after %d attempts (%s): %s; Idempotency-Key %s",
            delivery.url,
            delivery.attempts,
            why,
            outcome,
            delivery.key,
        )

    async def _store(self, state: State) -> None:
        """Store progress; when the broker cannot (it said why), a restart repeats an attempt."""
        await self.save(state)
