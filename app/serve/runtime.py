"""Everything one Pulseboard process runs, wired together once per app.

The Quart app keeps a :class:`Runtime` in ``app.extensions["pulseboard"]``;
blueprints read the broker, renderer and settings from it instead of from
module globals, so every test gets a fresh one from ``create_app``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from app.alerts import AlertEngine, AlertRule, check_notify_channels
from app.auth import Authority, build_authority, check_exposure
from app.broker import create_broker
from app.broker.base import Broker
from app.events import Event, KindRegistry, State
from app.outbox import OutboxStats
from app.ratelimit import RateLimiter
from app.render import Renderer, create_environment
from app.serve.metrics import OTHER_CHANNEL, Metrics
from app.serve.runner import SourceRunner
from app.settings import Settings
from app.sources.base import ConfiguredSource, configure_sources, load_source_types, register_kinds
from app.urls import public_base_url
from app.web.runtime import Panel
from app.web.streaming.registry import StreamRegistry, StreamTimings

log = logging.getLogger("pulseboard")

TASK_STOP_S = 2.0
SWEEP_MIN_S = 1.0
SWEEP_MAX_S = 60.0


@dataclass
class Runtime:
    """The broker, renderer, streams and sources of one process."""

    settings: Settings
    kinds: KindRegistry
    broker: Broker
    renderer: Renderer
    streams: StreamRegistry
    runner: SourceRunner
    panels: list[Panel]
    authority: Authority
    metrics: Metrics
    publish_limiter: RateLimiter
    chat_limiter: RateLimiter
    declared: set[str] = field(default_factory=set)
    webhooks: OutboxStats = field(default_factory=OutboxStats)
    run_sources: bool = True
    accepting: bool = True
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _stop: asyncio.Event | None = None

    async def publish(
        self, channel: str, kind: str, data: dict[str, Any], state: State | None = None
    ) -> Event:
        """Validate ``data`` against the kind's schema and publish it (what sources call).

        ``state`` (a source's checkpoint) is committed with the event.

        A channel a source publishes to is declared on its first event (a file
        that appears in a tailed glob): it never meets ``limits.max_channels``,
        is never swept and keeps its own metric series.
        """
        payload = self.kinds.get(kind).validate(data)
        if channel not in self.declared:
            await self.broker.declare(channel, kind)
            self.declared.add(channel)
        return await self.publish_valid(channel, kind, payload, state)

    async def publish_valid(
        self, channel: str, kind: str, data: dict[str, Any], state: State | None = None
    ) -> Event:
        """Publish an already validated payload, counting it."""
        event = await self.broker.publish(channel, kind, data, state)
        self.metrics.child(self.metrics.published, self.metric_channel(channel)).inc()
        return event

    async def publish_valid_many(
        self, channel: str, kind: str, items: list[dict[str, Any]]
    ) -> list[Event]:
        """Publish an already validated batch (NDJSON), counting it."""
        events = await self.broker.publish_many(channel, kind, items)
        self.metrics.child(self.metrics.published, self.metric_channel(channel)).inc(len(events))
        return events

    def count_request(self, route: str, status: int) -> None:
        """Count one answered request of ``route`` (its rule) with ``status``."""
        self.metrics.child(self.metrics.http_requests, route, str(status)).inc()

    def metric_channel(self, channel: str) -> str:
        """The ``channel`` label: declared channels by name, the rest as one ``_other`` series."""
        return channel if channel in self.declared else OTHER_CHANNEL

    async def start(self) -> None:
        """Connect the broker, declare the panels' channels, start streams' timers and sources."""
        await self.broker.start()
        for panel in self.panels:
            await self.broker.declare(panel.channel, panel.kind)
        for alert in self.settings.alerts:
            await self.broker.declare(alert.notify, "notify")
        self.streams.start()
        self._stop = asyncio.Event()
        self._tasks.append(asyncio.create_task(self._sweep(self._stop), name="channel-sweep"))
        if self.run_sources:
            self.runner.start(self.publish, self.broker.load_state, self.broker.save_state)
        log.info(
            "started broker=%s channels=%d sources=%d",
            self.settings.broker.url,
            len(self.panels),
            len(self.runner.sources) if self.run_sources else 0,
        )

    async def stop(self) -> None:
        """Stop sources and timers, end the streams still open, close the broker."""
        self.accepting = False
        await self.streams.close_all(self.settings.server.shutdown_grace)
        if self._stop is not None:
            self._stop.set()
        await self.runner.stop()
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=TASK_STOP_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.streams.stop()
        await self.broker.close()
        log.info("stopped")

    async def _sweep(self, stop: asyncio.Event) -> None:
        """Drop idle undeclared channels every ``sweep_interval_s`` until ``stop`` is set."""
        interval_s = sweep_interval_s(self.settings.limits.channel_idle_ttl_s)
        while not stop.is_set():
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)
            if stop.is_set():
                return
            try:
                dropped = await self.broker.sweep(time.monotonic())
            except Exception:  # the next sweep tries again; a dead sweeper would never
                log.exception("channel sweep failed")
                continue
            if dropped:
                log.info("dropped %d idle channels", len(dropped))

    def source_states(self) -> dict[str, bool]:
        """Whether each source run by this process is running, by label (none: not here)."""
        return {label: stat.running for label, stat in self.runner.stats.items()}

    def exposition(self) -> bytes:
        """The Prometheus text of /metrics."""
        return self.metrics.exposition()

    @property
    def ready(self) -> bool:
        """Accepting traffic, broker reachable, every source running."""
        return self.accepting and self.broker.ready and self.runner.healthy


def public_url(settings: Settings) -> str:
    """The absolute base of links we send out (alerts): ``server.public_url`` or derived."""
    server = settings.server
    return public_base_url(server.bind, server.public_url, server.host_names)


def sweep_interval_s(idle_ttl_s: float) -> float:
    """A tenth of the idle TTL, between 1 s and a minute: a channel goes at most that late."""
    return min(SWEEP_MAX_S, max(SWEEP_MIN_S, idle_ttl_s / 10))


def build_runtime(settings: Settings, *, run_sources: bool = True) -> Runtime:
    """Resolve source types, validate their configs and build the broker (no I/O yet)."""
    kinds = KindRegistry()
    metrics = Metrics()
    limits = settings.limits
    source_types = load_source_types()
    register_kinds(source_types.values(), kinds)
    sources = configure_sources(settings.sources, source_types)
    authority = build_authority(settings.auth)
    check_exposure(settings.server.bind, authority, allow_anonymous=settings.auth.allow_anonymous)
    panels = _panels(settings, sources, kinds)
    check_notify_channels(settings.alerts, {panel.channel: panel.kind for panel in panels})
    for index, rule in enumerate(settings.alerts):
        AlertRule.from_settings(index, rule)  # a bad rule fails here, naming its key
    broker = create_broker(settings, kinds)
    panels = _panels(settings, sources, kinds)
    webhooks = OutboxStats()  # this process's, across the engines the lease starts
    runtime = Runtime(
        settings=settings,
        kinds=kinds,
        broker=broker,
        renderer=Renderer(create_environment(kinds), kinds),
        streams=StreamRegistry(
            StreamTimings(
                heartbeat_s=settings.server.heartbeat,
                write_timeout_s=settings.server.write_timeout,
                retry_ms=settings.server.retry_ms,
            ),
            observe_latency=metrics.write_latency.observe,
        ),
        runner=SourceRunner(sources, _alert_engines(settings, broker, webhooks)),
        panels=panels,
        authority=authority,
        metrics=metrics,
        publish_limiter=RateLimiter(limits.publish_rate, limits.publish_burst),
        chat_limiter=RateLimiter(limits.chat_rate, limits.chat_burst),
        run_sources=run_sources,
        declared={panel.channel for panel in panels} | {alert.notify for alert in settings.alerts},
        webhooks=webhooks,
    )
    metrics.attach(runtime)
    return runtime


def _alert_engines(
    settings: Settings, broker: Broker, webhooks: OutboxStats
) -> Callable[[], AlertEngine] | None:
    """A fresh engine each time the sources start (an engine runs once), or None without rules."""
    if not settings.alerts:
        return None
    base_url = public_url(settings)
    return lambda: AlertEngine(settings.alerts, broker, base_url=base_url, outbox_stats=webhooks)


def _panels(
    settings: Settings, sources: list[ConfiguredSource], kinds: KindRegistry
) -> list[Panel]:
    panels: dict[str, Panel] = {}
    for index, channel in enumerate(settings.channels):
        if channel.kind not in kinds:
            known = ", ".join(kinds.names())
            raise ValueError(f"channels[{index}].kind: unknown kind {channel.kind!r} ({known})")
        panels[channel.name] = Panel(channel.name, channel.kind, channel.title or channel.name)
    for source in sources:
        for name, kind in source.type.channels(source.config):
            existing = panels.setdefault(name, Panel(name, kind, name))
            if existing.kind != kind:
                raise ValueError(
                    f"sources[{source.index}]: channel {name!r} is of kind {existing.kind!r}, "
                    f"not {kind!r}"
                )
    return list(panels.values())
