"""Broker backends, chosen by URL: ``sqlite://`` (embedded, durable), ``memory://`` or ``redis://``."""

from __future__ import annotations

from app.broker.base import Broker
from app.broker.hub import ChannelLimits
from app.events import KindRegistry
from app.settings import Settings


def create_broker(settings: Settings, kinds: KindRegistry) -> Broker:
    """The backend ``broker.url`` names; drivers are imported only when chosen."""
    url = settings.broker.url
    limits = ChannelLimits(settings.limits.max_channels, settings.limits.channel_idle_ttl_s)
    if url.startswith("memory://"):
        from app.broker.memory import MemoryBroker

        return MemoryBroker(kinds, settings.broker.history, settings.server.max_lag, limits)
    if url.startswith("sqlite://"):
        from app.broker.sqlite import SqliteBroker
        from app.broker.sqlite_store import Retention

        broker = settings.broker
        retention = Retention(
            broker.history,
            broker.retention.max_events,
            broker.retention.max_age_s,
            broker.max_bytes,
        )
        return SqliteBroker(
            url, kinds, retention, settings.server.max_lag, limits, fsync=broker.fsync
        )
    if url.startswith(("redis://", "rediss://", "unix://")):
        from app.broker.redis import RedisBroker

        return RedisBroker(url, kinds, settings.broker, settings.server.max_lag, limits)
    raise ValueError(f"broker.url: unsupported scheme in {url!r}")
