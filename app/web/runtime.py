"""What a request needs from the process (:class:`Site`), and the current app's one.

The web layer depends on this narrow interface, not on ``app.serve.runtime``:
``Runtime`` provides it, the factory attaches it to the app, and import-linter
keeps ``app.web`` from importing ``app.serve`` (docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, cast

from quart import current_app

from app.auth import Authority
from app.broker.base import Broker
from app.events import Event, KindRegistry
from app.ratelimit import RateLimiter
from app.render import Renderer
from app.settings import Settings
from app.web.streaming.registry import StreamRegistry

EXTENSION = "pulseboard"


@dataclass(frozen=True)
class Panel:
    """A channel the dashboard shows: configured in ``[[channels]]`` or declared by a source."""

    channel: str
    kind: str
    title: str


class Site(Protocol):
    """The broker, renderer, streams, limits and state a request handler reads."""

    @property
    def settings(self) -> Settings: ...
    @property
    def kinds(self) -> KindRegistry: ...
    @property
    def broker(self) -> Broker: ...
    @property
    def renderer(self) -> Renderer: ...
    @property
    def streams(self) -> StreamRegistry: ...
    @property
    def panels(self) -> list[Panel]: ...
    @property
    def authority(self) -> Authority: ...
    @property
    def publish_limiter(self) -> RateLimiter: ...
    @property
    def chat_limiter(self) -> RateLimiter: ...
    @property
    def accepting(self) -> bool: ...
    @property
    def ready(self) -> bool: ...

    def source_states(self) -> dict[str, bool]:
        """Whether each source run by this process is running, by label."""
        ...

    def count_request(self, route: str, status: int) -> None:
        """Count one answered request of ``route`` (its rule) with ``status``."""
        ...

    def exposition(self) -> bytes:
        """The Prometheus text of /metrics."""
        ...

    async def publish_valid(self, channel: str, kind: str, data: dict[str, Any]) -> Event:
        """Publish an already validated payload, counting it."""
        ...

    async def publish_valid_many(
        self, channel: str, kind: str, items: list[dict[str, Any]]
    ) -> list[Event]:
        """Publish an already validated batch (NDJSON) as one where the broker can, counting it."""
        ...


def current_runtime() -> Site:
    """What the app serving this request provides (its ``Runtime``, seen through ``Site``)."""
    return cast(Site, current_app.extensions[EXTENSION])
