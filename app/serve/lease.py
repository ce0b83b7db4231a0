"""Sources and alerts run once per deployment: a Redis lease picks the process.

Every ``serve`` process on redis:// (each ``--workers`` child, each host)
competes for one key, ``<key_prefix>:lease:sources``. The holder runs the
configured sources and alert rules; the others stand by and take over within
``ttl_s`` when the holder dies, or within ``renew_s`` when it stops cleanly.

Deliberate oddities:

- The holder keeps its sources running while Redis is unreachable: a process
  that cannot reach Redis cannot publish, so it cannot publish twice, and a
  log tail keeps its file position for when Redis returns. It stops them only
  when Redis answers that the lease belongs to another process.
- A holder that finds the lease free (it expired during an outage, or Redis
  came back empty) takes it again at once. A process standing by takes a
  free lease at once too, unless the deployment's epoch changed since its
  previous look (Redis came back empty, or was flushed): then it leaves the
  holder one renewal to take it back, and takes it only if it is still free at
  a look that finds the same epoch. Otherwise a wipe would move the sources
  to another process, and the log tails would start again there.
- Sources publish through :func:`patient`: while the broker is unavailable a
  publish waits and retries instead of failing, so a source is not crashed
  and restarted (a restarted log tail would backfill lines again) and the
  lines written during an outage are published once Redis is back. Before a
  retry it asks Redis whether the lease is still ours and waits until it is:
  the lease may have expired during the outage and another process taken it
  and started the same sources from the stored checkpoints, and a line this
  process then published too would arrive twice. (Waiting is enough: the
  renewal loop stops the sources of a process that lost the lease.) A publish
  whose reply was lost as Redis died may have happened: that one line can
  appear twice.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, TypeVar

from quart import Quart
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from app.broker.base import Broker, BrokerUnavailable
from app.broker.redis import RedisKeys
from app.events import Event, State
from app.serve.runtime import Runtime
from app.sources.base import Publish, SaveState, pause_unless_stopped

log = logging.getLogger(__name__)

TTL_S = 5.0
RENEW_S = 1.0
RETRY_MIN_S = 0.1
RETRY_MAX_S = 2.0

# KEYS: lease, epoch; ARGV: token, ttl_ms, the epoch seen at our last look ('' to take a
# free lease whatever the epoch). Ours, or free in that epoch → ours for ttl_ms more.
# Returns {1 ours | 0 another's | -1 free but the epoch changed: look again, epoch or '-'}.
CLAIM_LUA = """
local holder = redis.call('GET', KEYS[1])
local epoch = redis.call('GET', KEYS[2]) or '-'
if holder and holder ~= ARGV[1] then
  return {0, epoch}
end
if not holder and ARGV[3] ~= '' and ARGV[3] ~= epoch then
  return {-1, epoch}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1, epoch}
"""

# KEYS: lease; ARGV: token
RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class SourceLease:
    """This process's claim on the deployment's sources lease."""

    def __init__(self, url: str, key_prefix: str, ttl_s: float = TTL_S) -> None:
        self.key = f"{key_prefix}:lease:sources"
        self.epoch_key = RedisKeys(key_prefix).epoch
        self.token = secrets.token_hex(8)
        self.ttl_s = ttl_s
        self._held = False
        self._epoch = ""  # as of our last look; "" before the first
        self._client = Redis.from_url(
            url,
            socket_timeout=ttl_s / 2,
            socket_connect_timeout=ttl_s / 2,
            retry=Retry(NoBackoff(), 0),
        )
        self._claim = self._client.register_script(CLAIM_LUA)
        self._release = self._client.register_script(RELEASE_LUA)

    async def claim(self) -> bool | None:
        """True when the lease is ours (renewed), False when not (yet), None when unknown."""
        keys = [self.key, self.epoch_key]
        seen = "" if self._held else self._epoch
        try:
            state, epoch = await self._claim(
                keys=keys, args=[self.token, int(self.ttl_s * 1000), seen]
            )
        except RedisError as error:
            log.warning("sources lease: cannot reach Redis: %s", error)
            return None
        self._held, self._epoch = state == 1, epoch.decode()
        if state == -1:
            log.info("sources lease: free in a new epoch; leaving the holder a renewal")
        return self._held

    async def held_again(self) -> None:
        """Return once Redis says the lease is ours (renewed or taken back); until then wait.

        A process that lost the lease waits here until its sources are stopped.
        """
        delay = RETRY_MIN_S
        while not await self.claim():
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)

    async def close(self) -> None:
        """Give the lease up (another process takes over at its next claim) and disconnect."""
        try:
            await self._release(keys=[self.key], args=[self.token])
        except RedisError as error:
            log.warning("sources lease: not released (it expires in %.0fs): %s", self.ttl_s, error)
        await self._client.aclose()


class LeasedSources:
    """Decides whether this process runs the sources and alerts: while it holds the lease.

    Starting and stopping them is the runtime's ``SourceRunner``'s job; this
    only says when.
    """

    def __init__(self, runtime: Runtime, lease: SourceLease, renew_s: float = RENEW_S) -> None:
        self.runtime = runtime
        self.lease = lease
        self.renew_s = renew_s

    @property
    def running(self) -> bool:
        """True while this process runs the deployment's sources."""
        return self.runtime.runner.running

    async def run(self, stop: asyncio.Event) -> None:
        """Claim or renew every ``renew_s`` until ``stop``; start and stop the sources to match."""
        try:
            while not stop.is_set():
                held = await self.lease.claim()
                if held and not self.running:
                    self._start()
                elif held is False and self.running:
                    log.warning("sources lease: taken by another process; stopping sources")
                    await self.runtime.runner.stop()
                await pause_unless_stopped(stop, self.renew_s)
        finally:
            await self.runtime.runner.stop()
            await self.lease.close()

    def _start(self) -> None:
        runner = self.runtime.runner
        log.info("sources lease: held; running %d sources", len(runner.sources))
        broker = self.runtime.broker
        held = self.lease.held_again
        runner.start(
            patient(self.runtime.publish, held), broker.load_state, patient_save(broker, held)
        )


LeaseCheck = Callable[[], Awaitable[None]]


def patient(publish: Publish, held: LeaseCheck) -> Publish:
    """``publish`` that waits out a broker outage (retrying with backoff) instead of failing.

    ``held`` returns once the lease is ours again; each retry waits for it first.
    """

    async def publish_when_possible(
        channel: str, kind: str, data: dict[str, Any], state: State | None = None
    ) -> Event:
        return await _when_possible(
            lambda: publish(channel, kind, data, state), held, f"source publish to {channel}"
        )

    return publish_when_possible


def patient_save(broker: Broker, held: LeaseCheck) -> SaveState:
    """The broker's ``save_state`` for sources, waiting out an outage like :func:`patient`."""

    async def save_when_possible(state: State) -> None:
        await _when_possible(lambda: broker.save_state(state), held, "a source's checkpoint")

    return save_when_possible


T = TypeVar("T")


async def _when_possible(attempt: Callable[[], Awaitable[T]], held: LeaseCheck, what: str) -> T:
    """``await attempt()``, retried with capped backoff while the broker is unavailable."""
    delay = RETRY_MIN_S
    while True:
        try:
            return await attempt()
        except BrokerUnavailable as error:
            if delay == RETRY_MIN_S:
                log.warning("%s waits for the broker: %s", what, error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)
            await held()


def run_sources_under_lease(app: Quart, runtime: Runtime) -> None:
    """Make ``app`` run ``runtime``'s sources only while it holds the deployment's lease.

    ``runtime`` must have been built with ``run_sources=False``; the lease is
    claimed once the broker is up and given back before it closes.
    """
    broker = runtime.settings.broker

    @app.while_serving
    async def sources_under_lease() -> AsyncGenerator[None, None]:
        stop = asyncio.Event()
        leased = LeasedSources(runtime, SourceLease(broker.url, broker.key_prefix))
        task = asyncio.create_task(leased.run(stop), name="sources lease")
        yield
        stop.set()
        await asyncio.wait([task])


async def run_sources_alone(runtime: Runtime) -> None:
    """``pulseboard sources run``: configured sources under the lease, no HTTP, until a signal.

    Beside ``serve --no-sources`` gateways this is the one process that runs
    sources; the lease keeps it to one even if several are started.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    broker = runtime.settings.broker
    await runtime.start()
    try:
        await LeasedSources(runtime, SourceLease(broker.url, broker.key_prefix)).run(stop)
    finally:
        await runtime.stop()
