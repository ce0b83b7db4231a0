"""The Source contract, the registry of source types, and the supervisor that runs them.

A source type is found through the entry-point group ``pulseboard.sources``;
the built-ins are registered there exactly like a third-party plugin, so the
plugin path runs every day. A source never touches HTTP, Quart or
subscribers: it gets its typed config, a ``publish`` callable and a ``stop``
event.

A source that must resume exactly where it stopped (logtail: file identity
and offset) keeps a checkpoint: it passes ``state`` with what it publishes
(committed atomically with the event) and, when its type sets
``checkpoints = True``, gets what was stored under ``"<type>:"`` through
``restore`` before ``run``. One that must store state without an event to
publish (logtail: the mark of a file opened with nothing to publish yet) also
defines ``use_save_state``, and gets the broker's ``save_state`` that way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Protocol, cast, runtime_checkable

import msgspec

from app.events import Event, Kind, KindRegistry, PayloadError, State

log = logging.getLogger("pulseboard.sources")

ENTRY_POINT_GROUP = "pulseboard.sources"
_FIELD_ERROR = re.compile(r"(missing required|contains unknown) field `([^`]+)`")
_KEY_PREFIX = re.compile(r"([a-z_][a-z0-9_]*): (.+)\Z", re.DOTALL)


class Publish(Protocol):
    """What a source calls to publish: ``await publish(channel, kind, data)``.

    ``state``: keys (prefixed ``"<type>:"``) stored with the event, both or neither.
    """

    def __call__(
        self, channel: str, kind: str, data: dict[str, Any], state: State | None = None
    ) -> Awaitable[Event]: ...


LoadState = Callable[[str], Awaitable[dict[str, str]]]
"""``await load_state(prefix)``: the stored state whose keys start with ``prefix``."""


SaveState = Callable[[State], Awaitable[None]]
"""``await save_state(state)``: store ``state`` on its own, durable on return."""


Pause = Callable[[asyncio.Event, float], Awaitable[None]]
"""How a source waits between two steps: ``await pause(stop, seconds)`` (tests inject a fake)."""


async def pause_unless_stopped(stop: asyncio.Event, delay_s: float) -> None:
    """Wait ``delay_s`` seconds, or less when ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=delay_s)


class Source(Protocol):
    """A running source: produce payloads until ``stop`` is set, then return."""

    async def run(self, publish: Publish, stop: asyncio.Event) -> None: ...


class Restorable(Source, Protocol):
    """A source whose type sets ``checkpoints``: handed its stored state before ``run``."""

    def restore(self, state: dict[str, str]) -> None: ...


@runtime_checkable
class SavesState(Protocol):
    """A checkpointing source that also stores state without publishing (optional).

    ``use_save_state`` is called after ``restore``, before ``run``; a source
    without it (an older plugin) simply stores its state with its events.
    """

    def use_save_state(self, save_state: SaveState) -> None: ...


@dataclass(frozen=True)
class SourceType:
    """A kind of source, as a plugin registers it.

    Attributes:
        name: the ``type`` in ``[[sources]]``.
        config: msgspec struct for the source's keys (unknown keys are refused);
            every config has a ``type`` field, which is not passed on.
        create: builds a Source from a validated config.
        channels: the ``(channel, kind)`` pairs a config declares up front (panels
            on the dashboard); sources may publish to more channels later.
        kinds: kinds this type adds to the registry (plugins with a new kind).
        checkpoints: its sources keep state (``restore`` is called before ``run``
            with what was stored under ``"<name>:"``; ``use_save_state`` too, when
            the source defines it: see :class:`SavesState`).
    """

    name: str
    config: type[msgspec.Struct]
    create: Callable[[Any], Source]
    channels: Callable[[Any], list[tuple[str, str]]] = lambda config: []
    kinds: tuple[Kind, ...] = ()
    description: str = ""
    checkpoints: bool = False


class SourceConfigError(ValueError):
    """A ``[[sources]]`` entry that cannot run; the message names the key."""


def load_source_types(extra: Iterable[SourceType] = ()) -> dict[str, SourceType]:
    """Every source type installed (entry points) plus ``extra``; a duplicate name is an error.

    The error names both registrations (distribution and object), so the user
    knows which package to remove.
    """
    candidates = [_load_entry(entry) for entry in entry_points(group=ENTRY_POINT_GROUP)]
    candidates.extend((t, _origin_of(t)) for t in extra)
    found: dict[str, tuple[SourceType, str]] = {}
    for source_type, origin in candidates:
        if source_type.name in found:
            raise SourceConfigError(
                f"source type {source_type.name!r} is registered twice: "
                f"by {found[source_type.name][1]} and by {origin}"
            )
        found[source_type.name] = (source_type, origin)
    return {name: pair[0] for name, pair in found.items()}


def _load_entry(entry: EntryPoint) -> tuple[SourceType, str]:
    dist = entry.dist.name if entry.dist is not None else "?"
    origin = f"{dist} ({entry.name} = {entry.value})"
    try:
        source_type = entry.load()
    except Exception as error:
        raise SourceConfigError(
            f"source plugin {origin} failed to load: {type(error).__name__}: {error}"
        ) from error
    if not isinstance(source_type, SourceType):
        raise SourceConfigError(f"source plugin {origin} is not a SourceType")
    return source_type, origin


def _origin_of(source_type: SourceType) -> str:
    module = getattr(source_type.create, "__module__", None) or "?"
    return f"{module} (passed in)"


def register_kinds(types: Iterable[SourceType], registry: KindRegistry) -> None:
    """Add the kinds plugins bring to ``registry`` (before the broker creates channels)."""
    for source_type in types:
        for kind in source_type.kinds:
            try:
                registry.register(kind)
            except ValueError as error:
                raise SourceConfigError(f"source type {source_type.name!r}: {error}") from None


@dataclass
class ConfiguredSource:
    """One ``[[sources]]`` entry, validated: its type, config and a display name."""

    index: int
    type: SourceType
    config: Any

    @property
    def label(self) -> str:
        """``ticker#0``: how logs and metrics name this source."""
        return f"{self.type.name}#{self.index}"


def configure_sources(
    entries: list[dict[str, Any]], types: dict[str, SourceType]
) -> list[ConfiguredSource]:
    """Validate every ``[[sources]]`` entry against its type's config schema."""
    configured = []
    for index, entry in enumerate(entries):
        where = f"sources[{index}]"
        type_name = entry.get("type")
        if not isinstance(type_name, str):
            raise SourceConfigError(f"{where}.type: required (one of {', '.join(sorted(types))})")
        if type_name not in types:
            known = ", ".join(sorted(types))
            raise SourceConfigError(f"{where}.type: unknown source type {type_name!r} ({known})")
        source_type = types[type_name]
        try:
            config = msgspec.convert(entry, source_type.config, strict=True)
        except msgspec.ValidationError as error:
            raise SourceConfigError(_name_key(where, str(error))) from None
        except PayloadError as error:
            raise SourceConfigError(f"{where}.{error.field}: {error.message}") from None
        configured.append(ConfiguredSource(index, source_type, config))
    return configured


def _name_key(where: str, message: str) -> str:
    """Make msgspec's "... - at `$.interval`" or a check's "key: reason" name the full key."""
    text, _, key = message.rpartition(" - at `$.")
    if text:
        return f"{where}.{key.rstrip('`')}: {text}"
    if field_error := _FIELD_ERROR.search(message):
        reason = "required" if field_error.group(1) == "missing required" else "unknown key"
        return f"{where}.{field_error.group(2)}: {reason}"
    if key_error := _KEY_PREFIX.match(message):
        return f"{where}.{key_error.group(1)}: {key_error.group(2)}"
    return f"{where}: {message}"


@dataclass
class SourceStats:
    """What the supervisor knows of one source (for /readyz and metrics).

    ``source`` is the object running now (or last): metrics read from it the
    figures some sources keep (``LogTailSource.stats``); a restart starts them afresh.
    """

    running: bool = False
    crashes: int = 0
    last_error: str | None = None
    source: Source | None = None


@dataclass
class Supervisor:
    """Runs each configured source as a task; a crash is logged, counted and restarted.

    Restarts wait with capped exponential backoff: from ``min_backoff_s``
    doubling up to ``max_backoff_s``, each wait drawn between half and all of
    it (jitter, so sources failing together do not retry in lockstep). A run
    that lasted longer than ``max_backoff_s`` resets the backoff. A source
    that returns before stop is restarted the same way, without counting a crash.
    """

    sources: list[ConfiguredSource]
    publish: Publish
    load_state: LoadState | None = None
    save_state: SaveState | None = None
    min_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    on_crash: Callable[[ConfiguredSource, BaseException], None] | None = None
    rng: random.Random = field(default_factory=random.Random)
    stats: dict[str, SourceStats] = field(default_factory=dict)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        """Start one task per source."""
        for source in self.sources:
            self.stats[source.label] = SourceStats()
            task = asyncio.create_task(self._supervise(source), name=f"source {source.label}")
            self._tasks.append(task)

    async def stop(self, timeout_s: float = 3.0) -> None:
        """Ask every source to stop, then cancel those that have not within ``timeout_s``."""
        self._stop.set()
        if not self._tasks:
            return
        _done, pending = await asyncio.wait(self._tasks, timeout=timeout_s)
        for task in pending:
            log.warning(
                "source task %r ignored stop for %.1fs; cancelling", task.get_name(), timeout_s
            )
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self._tasks.clear()

    @property
    def healthy(self) -> bool:
        """True when every source is running (for /readyz)."""
        return all(stat.running for stat in self.stats.values())

    async def _supervise(self, source: ConfiguredSource) -> None:
        loop = asyncio.get_running_loop()
        backoff = self.min_backoff_s
        while not self._stop.is_set():
            started = loop.time()
            await self._run_once(source, self.stats[source.label])
            if self._stop.is_set():
                return
            if loop.time() - started > self.max_backoff_s:
                backoff = self.min_backoff_s
            await pause_unless_stopped(self._stop, self.rng.uniform(backoff / 2, backoff))
            backoff = min(backoff * 2, self.max_backoff_s)

    async def _run_once(self, source: ConfiguredSource, stat: SourceStats) -> None:
        stat.running = True
        try:
            stat.source = source.type.create(source.config)
            if source.type.checkpoints and self.load_state is not None:
                restorable = cast(Restorable, stat.source)
                restorable.restore(await self.load_state(f"{source.type.name}:"))
                if self.save_state is not None and isinstance(stat.source, SavesState):
                    stat.source.use_save_state(self.save_state)
            await stat.source.run(self.publish, self._stop)
            if not self._stop.is_set():
                log.warning("source %s returned before stop; restarting", source.label)
        except Exception as error:
            stat.crashes += 1
            stat.last_error = f"{type(error).__name__}: {error}"
            log.exception("source %s crashed (%d so far); restarting", source.label, stat.crashes)
            if self.on_crash is not None:
                self.on_crash(source, error)
        finally:
            stat.running = False
