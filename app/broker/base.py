"""The Broker contract: what every backend (memory://, sqlite://, redis://) provides.

The broker is the only place that assigns event ids, keeps history and knows
subscribers. Every backend is built by composition: how it sequences and
stores events (its own module), plus the local fan-out part every backend
holds (:mod:`app.broker.local`: rings, cursors, placement, conflation,
history paging, on :mod:`app.broker.hub`). Subscribers get the hub's
:class:`~app.broker.hub.Subscription` whatever the backend, seen through
:class:`Feed`, the part consumers (streams, alerts) use: they read it with
``await feed.next_batch()`` until ``closed_reason`` is set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from app.broker.hub import Deliver, Encode, Wake
from app.events import Event, State


def apply_state(stored: dict[str, str], state: State) -> None:
    """Set each key of ``state`` in ``stored``, deleting those set to ``None``.

    >>> stored = {"a": "1", "b": "2"}
    >>> apply_state(stored, {"a": None, "c": "3"})
    >>> stored
    {'b': '2', 'c': '3'}
    """
    for key, value in state.items():
        if value is None:
            stored.pop(key, None)
        else:
            stored[key] = value


class BrokerError(Exception):
    """Base of the broker's own errors."""


class BrokerUnavailable(BrokerError):
    """The backend cannot be reached right now (HTTP 503, retry later)."""

    retry_after_s = 2


class KindConflict(BrokerError):
    """A publish or declaration names a kind other than the channel's."""

    def __init__(self, channel: str, kind: str, wanted: str) -> None:
        super().__init__(f"channel {channel!r} is of kind {kind!r}, not {wanted!r}")
        self.channel = channel
        self.kind = kind


class ChannelLimit(BrokerError):
    """Publishing would create one undeclared channel more than ``limits.max_channels``."""

    def __init__(self, channel: str, max_channels: int) -> None:
        super().__init__(
            f"too many channels: limits.max_channels ({max_channels}) reached, "
            f"{channel!r} is not created"
        )
        self.channel = channel
        self.max_channels = max_channels


@dataclass(frozen=True, slots=True)
class Start:
    """Where a new subscription starts.

    Attributes:
        after: the client's Last-Event-ID, or None for a fresh connect.
        history: on a fresh connect, replay the last N events per channel first.
        snapshot: instead of replaying, hand recent events per channel (and the
            channels of a gap) to the caller in ``Subscription.snapshots`` so it
            can render them as one replacing swap (the html format). Without it,
            a fresh connect with neither ``history`` nor ``since`` still hands
            over the latest value per key of latest-value channels (the ticker).
        since: on a fresh connect, replay from the first retained event whose
            time is at or after this UNIX time.
    """

    after: str | None = None
    history: int = 0
    snapshot: bool = False
    since: float | None = None


@dataclass(frozen=True)
class ChannelInfo:
    """A channel as ``GET /api/channels`` shows it."""

    name: str
    kind: str
    subscribers: int
    last_id: str | None
    retained: int

    def as_json_dict(self) -> dict[str, Any]:
        """The public JSON shape."""
        return {
            "name": self.name,
            "kind": self.kind,
            "subscribers": self.subscribers,
            "last_id": self.last_id,
            "retained": self.retained,
        }


@dataclass
class BrokerStats:
    """What went wrong with the backend, as plain counters ``/metrics`` reads at scrape time.

    Attributes:
        errors: commands that failed (the backend unreachable, refusing or behind).
        reconnects: times a reader came back after losing the backend.
    """

    errors: int = 0
    reconnects: int = 0


@dataclass(frozen=True)
class HistoryPage:
    """Events after a cursor; ``gap`` when the cursor was unknown or already trimmed."""

    events: list[Event]
    gap: bool


class Feed(Protocol):
    """A subscription as its consumer sees it: the one consuming loop, and how to wake it."""

    @property
    def wake(self) -> Wake:
        """Set when there is news; a consumer sets it too, for its own reasons (a heartbeat)."""

    @property
    def closed_reason(self) -> str | None:
        """Set when the broker ended the subscription (shutdown)."""

    @property
    def gap_channels(self) -> list[str]:
        """Channels whose history after the client's cursor is lost."""

    @property
    def gap_cursor(self) -> str | None:
        """With a gap, the id just before the replay that follows it (a valid cursor)."""

    @property
    def snapshots(self) -> dict[str, list[Event]]:
        """Per channel, recent events to render as a replacing swap (when the start asked)."""

    async def next_batch(self, limit: int = 512, timeout_s: float | None = None) -> list[Event]:
        """Wait for news, then take it (``[]`` when woken for another reason or timed out).

        Raises:
            SubscriberLagging: fell more than ``max_lag`` behind; the consumer must reconnect.
        """

    def interrupt(self) -> None:
        """Make the pending (or next) :meth:`next_batch` return: the consumer has its own news."""

    def park(self, encode: Encode, deliver: Deliver) -> None:
        """Have the broker hand new events, encoded by ``encode``, to ``deliver`` until woken.

        An event ``encode`` makes ``b""`` of is skipped: ``deliver`` is not called.
        """

    def too_far_behind(self) -> bool:
        """True when the next :meth:`next_batch` would raise SubscriberLagging."""

    def kind_of(self, channel: str) -> str | None:
        """The kind of ``channel``, one this subscription follows."""


class Broker(Protocol):
    """What the gateway and the sources need from a broker backend."""

    stats: BrokerStats

    @property
    def epoch(self) -> str:
        """The epoch the ids this broker hands out carry."""

    async def start(self) -> None:
        """Connect and start background work (readers); called once before serving."""

    async def close(self) -> None:
        """Stop background work and end every subscription."""

    @property
    def ready(self) -> bool:
        """True while the backend is reachable (``/readyz``)."""

    async def declare(self, channel: str, kind: str) -> None:
        """Fix ``channel``'s kind (configured channels); KindConflict if it has another.

        A declared channel always exists: it is never refused by nor counted
        against ``limits.max_channels``, and never swept.
        """

    async def kind_of(self, channel: str) -> str | None:
        """The channel's kind, or None when it has never been declared or published to."""

    async def publish(
        self, channel: str, kind: str, data: dict[str, Any], state: State | None = None
    ) -> Event:
        """Append one event (data already validated) and wake its subscribers.

        ``state`` is stored with the event, atomically: both or neither (a
        source's checkpoint: a crash can then neither lose nor repeat a line).
        ChannelLimit when it would create an undeclared channel beyond ``limits.max_channels``.
        """

    async def publish_many(
        self,
        channel: str,
        kind: str,
        items: Sequence[dict[str, Any]],
        state: State | None = None,
    ) -> list[Event]:
        """Publish ``items`` (validated) in order, as one batch where the backend can.

        sqlite:// commits them in one transaction (all or none); the others
        publish one after another (those before a failure stay published).
        ``state`` is stored with the last item.
        """

    async def load_state(self, prefix: str) -> dict[str, str]:
        """The stored state whose keys start with ``prefix`` (memory:// forgets it on restart)."""

    async def save_state(self, state: State) -> None:
        """Store ``state`` on its own (a consumer's cursor, an outbox entry); durable on return.

        Raises:
            BrokerUnavailable: the backend cannot store it now.
        """

    def subscribe(self, patterns: Sequence[str], start: Start) -> AbstractAsyncContextManager[Feed]:
        """A cursor over every channel matching ``patterns``, freed when the block exits."""

    async def history(
        self, channel: str, after: str | None, limit: int, since: float | None = None
    ) -> HistoryPage:
        """Up to ``limit`` retained events of ``channel`` after ``after`` (oldest first).

        ``since``: only from the first event whose time is at or after it.
        """

    async def before(self, channel: str, before: str | None, limit: int) -> HistoryPage:
        """Up to ``limit`` retained events just before ``before`` (oldest first): paging back.

        ``before=None`` is the newest ``limit``. An empty page means nothing older is
        retained (the start of retention); ``gap`` when ``before`` is not one of this
        epoch's ids (a restart), so the caller starts again from the newest.
        """

    def channels(
        self,
        after: str | None = None,
        limit: int | None = None,
        visible: Callable[[str], bool] | None = None,
    ) -> list[ChannelInfo]:
        """Channels sorted by name: those after ``after``, at most ``limit``, ``visible`` ones."""

    def subscriber_counts(self, channels: Iterable[str]) -> dict[str, int]:
        """Subscribers of each of ``channels`` that exists (a scrape: no walk over all channels)."""

    def follows(self) -> int:
        """Subscribers summed over every channel, counted per subscription, not per channel."""

    async def sweep(self, now: float) -> list[str]:
        """Drop undeclared channels idle for ``limits.channel_idle_ttl``; their names.

        ``now`` is a monotonic clock reading (injectable: tests pass days ahead).
        """


@dataclass(frozen=True)
class LineScan:
    """One step of a search run by the store: the lines among ``scanned`` older events that match.

    Attributes:
        events: the events whose line the pattern finds, oldest first.
        oldest_id, oldest_time: the oldest event scanned (the next step's cursor); None
            when nothing older was left.
        end: nothing older than the scanned events is retained.
    """

    events: list[Event]
    oldest_id: str | None
    oldest_time: float | None
    end: bool


@runtime_checkable
class LineSearch(Protocol):
    """A broker that runs a log search next to its data (sqlite://): an optional ability.

    The log viewer's search (app/scrollback.py) uses it when the broker has it,
    else pages through :meth:`Broker.before`; both give the same answer.
    """

    async def scan_lines(
        self, channel: str, before: str | None, pattern: Any, count: int
    ) -> LineScan | None:
        """Scan the ``count`` events of ``channel`` before ``before`` (None: the newest) for
        lines ``pattern`` (compiled RE2) finds; None when ``before`` is not this epoch's."""
