"""Events, channel names and patterns, kinds and their payload schemas.

Deliberate oddities:
- Channel names are validated here and nowhere else; everything that reaches
  the SSE ``event:`` field went through :func:`validate_channel`, so a name can
  never carry CR/LF into a frame.
- Payloads are validated with msgspec structs (unknown fields refused) and then
  stored as plain dicts: events are shared read-only by every subscriber.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeAlias

import msgspec

CHANNEL_MAX_LENGTH = 100
State: TypeAlias = Mapping[str, str | None]
"""Durable state committed with events (a source's checkpoint, a consumer's cursor).

Keys are namespaced by their owner (``logtail:...``, ``alerts:...``); ``None`` deletes a key.
"""
RESERVED_CHANNELS = frozenset({"gap", "message", "error", "open", "close"})
_SEGMENT = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")
_EVENT_ID = re.compile(r"([A-Za-z0-9]{1,24})-([0-9]{1,19})\Z")
EVENT_ID_MAX_LENGTH = 64


class PayloadError(ValueError):
    """A request carried something we refuse; ``field`` names what (for the 400 body)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def validate_channel(name: str, *, field: str = "channel") -> str:
    """Return ``name`` if it is a valid channel name, else raise PayloadError."""
    _check_name(name, field, allow_wildcard=False)
    return name


def validate_pattern(pattern: str, *, field: str = "channel") -> str:
    """Return ``pattern`` if it is a channel name whose segments may be ``*``."""
    _check_name(pattern, field, allow_wildcard=True)
    return pattern


def _check_name(name: str, field: str, *, allow_wildcard: bool) -> None:
    if not 1 <= len(name) <= CHANNEL_MAX_LENGTH:
        raise PayloadError(field, f"must be 1 to {CHANNEL_MAX_LENGTH} characters")
    for segment in name.split("."):
        if allow_wildcard and segment == "*":
            continue
        if not _SEGMENT.match(segment):
            what = "segments of lowercase letters, digits, '_' or '-'"
            if allow_wildcard:
                what += ", or '*'"
            raise PayloadError(field, f"{name!r} is not a channel name: use dot-separated {what}")
    if name in RESERVED_CHANNELS:
        raise PayloadError(field, f"{name!r} is reserved")


def pattern_matches(pattern: str, channel: str) -> bool:
    """True when ``channel`` matches ``pattern`` (``*`` stands for exactly one segment).

    >>> pattern_matches("log.*", "log.nginx"), pattern_matches("log.*", "log.a.b")
    (True, False)
    """
    if "*" not in pattern:
        return pattern == channel
    wanted = pattern.split(".")
    parts = channel.split(".")
    if len(wanted) != len(parts):
        return False
    return all(w in ("*", p) for w, p in zip(wanted, parts, strict=True))


def is_pattern(text: str) -> bool:
    """True when ``text`` contains a wildcard segment."""
    return "*" in text


# -- event ids ---------------------------------------------------------------


def format_event_id(epoch: str, seq: int) -> str:
    """An id is ``<epoch>-<sequence>``: opaque to clients, a position to the broker."""
    return f"{epoch}-{seq}"


def parse_event_id(text: str) -> tuple[str, int] | None:
    """Return ``(epoch, seq)`` for one of our ids, None for anything else."""
    match = _EVENT_ID.match(text)
    if match is None:
        return None
    return match.group(1), int(match.group(2))


def check_cursor_text(text: str, *, field: str = "last_event_id") -> str:
    """Refuse a Last-Event-ID that no server of ours could have sent (400, not a gap)."""
    if len(text) > EVENT_ID_MAX_LENGTH:
        raise PayloadError(field, f"longer than {EVENT_ID_MAX_LENGTH} characters")
    if not text.isascii() or not text.isprintable() or " " in text:
        raise PayloadError(field, "must be printable ASCII without spaces")
    return text


# -- the event ---------------------------------------------------------------


@dataclass(slots=True, eq=False)
class Event:
    """One published event. ``seq`` orders events broker-wide; ``offset`` within its channel.

    ``frames`` caches the encoded SSE frame per format so that every subscriber
    of that format shares one bytes object.
    """

    id: str
    channel: str
    kind: str
    time: float
    data: dict[str, Any]
    seq: int
    offset: int
    frames: dict[str, bytes] = field(default_factory=dict)

    def as_json_dict(self) -> dict[str, Any]:
        """The public JSON shape of an event (stream bodies and the history API)."""
        return {
            "id": self.id,
            "channel": self.channel,
            "kind": self.kind,
            "time": self.time,
            "data": self.data,
        }


# -- kinds and payload schemas -----------------------------------------------

Level = Literal["error", "warn", "info", "debug"]
LEVEL_ORDER: dict[str, int] = {"debug": 0, "info": 1, "warn": 2, "error": 3}


class ChatPayload(msgspec.Struct, forbid_unknown_fields=True):
    user: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class LogPayload(msgspec.Struct, forbid_unknown_fields=True):
    """``ts``: the time the line states (UNIX seconds); ``lineno``: its number in ``file``."""

    line: str
    file: str
    level: Level | None = None
    ts: Annotated[float, msgspec.Meta(ge=0)] | None = None
    lineno: Annotated[int, msgspec.Meta(ge=1)] | None = None


class TickerPayload(msgspec.Struct, forbid_unknown_fields=True):
    symbol: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    price: float
    change: float
    change_pct: float
    volume: int


NotifyLevel = Literal["info", "success", "warning", "warn", "error", "critical"]
PRIORITY_NAMES: dict[str, int] = {
    "min": 1,
    "low": 2,
    "default": 3,
    "high": 4,
    "urgent": 5,
    "max": 5,  # ntfy's other name for 5
}
PRIORITY_LEVELS: dict[int, NotifyLevel] = {
    1: "info",
    2: "info",
    3: "info",
    4: "warning",
    5: "critical",
}


class NotifyPayload(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A notification; ``warn`` is stored as ``warning``, ``priority`` (ntfy's 1-5) as a number.

    Without ``level``, the level follows ``priority`` (:data:`PRIORITY_LEVELS`).
    """

    message: Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]
    title: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    level: NotifyLevel | None = None
    priority: int | str | None = None
    tags: list[Annotated[str, msgspec.Meta(min_length=1, max_length=50)]] | None = None
    link: Annotated[str, msgspec.Meta(max_length=2000)] | None = None
    key: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None

    def __post_init__(self) -> None:
        if self.priority is not None:
            self.priority = parse_priority(self.priority)
        if self.level is None:
            self.level = "info" if self.priority is None else PRIORITY_LEVELS[self.priority]
        elif self.level == "warn":
            self.level = "warning"


def parse_priority(value: int | str) -> int:
    """ntfy's priority: 1-5, as a number, a digit or a name (``min low default high urgent``)."""
    if isinstance(value, str):
        text = value.strip().lower()
        value = PRIORITY_NAMES.get(text, int(text) if text.isdigit() else 0)
    if not 1 <= value <= 5:
        names = "/".join(PRIORITY_NAMES)
        raise msgspec.ValidationError(f"Expected 1 to 5 or {names} - at `$.priority`")
    return value


@dataclass(frozen=True)
class KindView:
    """How the gateway shows a kind: the one place render, dashboard and api read.

    A kind's panel is its partial rendered in three modes (see :mod:`app.render`);
    everything else the pages need to know about the kind is here, so adding a
    kind is a schema, a partial and one :class:`Kind` entry.

    Attributes:
        template: the Jinja partial that renders the kind's rows.
        template_dir: a directory searched for ``template`` (and ``head``, ``form``)
            after the built-in templates: where a plugin ships its partials.
        cap: rows a panel's list keeps; the fragments delete what falls off.
        page_history: events a page reads to render a panel the first time.
        snapshot_size: events a fresh ``format=html`` stream starts the panel
            with (latest-value kinds: the newest event per key, whatever this says).
        latest_value_key: payload field whose newest value is all a lagging
            subscriber needs (the ticker's ``symbol``): such channels conflate
            instead of cutting a slow client, and show one row per key.
        replace_key: payload field whose value names a row that a later event
            replaces in its first place (notify's ``key``); no conflation.
        spark_field: a number the renderer remembers per ``latest_value_key``,
            for the row's sparkline and tick direction (the ticker's ``price``).
        head: partial shown above the list (the ticker board's column names).
        form: partial of the form people post with, under the panel (chat); the
            publish API answers an htmx post with it, and every post to the kind
            also spends the per-client ``limits.chat_rate`` budget.
        swap: where a live row goes in the list (htmx ``hx-swap``).
        scroll: which end of the panel stays in view as rows arrive.
        live: how a screen reader announces new rows (``aria-live``).
    """

    template: str = "partials/_default.html"
    template_dir: Path | None = None
    cap: int = 200
    page_history: int = 50
    snapshot_size: int = 50
    latest_value_key: str | None = None
    replace_key: str | None = None
    spark_field: str | None = None
    head: str | None = None
    form: str | None = None
    swap: Literal["beforeend", "afterbegin"] = "beforeend"
    scroll: Literal["top", "bottom"] = "top"
    live: Literal["off", "polite"] = "off"

    def __post_init__(self) -> None:
        for name in ("cap", "page_history", "snapshot_size"):
            if getattr(self, name) < (1 if name == "cap" else 0):
                raise ValueError(f"view.{name}: {getattr(self, name)!r} is too small")
        if self.spark_field is not None and self.latest_value_key is None:
            raise ValueError("view.spark_field: needs a latest_value_key to keep values per key")


@dataclass(frozen=True)
class Kind:
    """A channel type: its payload schema and how the gateway treats its events.

    Attributes:
        name: the kind's name, as in config (``kind = "chat"``).
        schema: msgspec struct that validates payloads (unknown fields refused).
        view: how pages, fragments and the publish API show and take it.
        external_publish: whether the HTTP API may publish to it (log and ticker: 409).
        text: the searchable text of a payload (what ``q=`` matches).
        level: the payload's severity on the log scale (``level=`` filter); None
            for kinds that have no severity, which that filter leaves alone.
        form_field: for a form or text/plain body without the schema's fields,
            the field that receives the whole body (notify's ``message``).
    """

    name: str
    schema: type[msgspec.Struct]
    view: KindView = KindView()
    external_publish: bool = True
    text: Callable[[dict[str, Any]], str] = lambda data: ""
    level: Callable[[dict[str, Any]], str | None] | None = None
    form_field: str | None = None
    defaults: dict[str, Any] = field(default_factory=dict)

    def validate(self, payload: Any) -> dict[str, Any]:
        """Check ``payload`` against the schema; return it as a plain dict."""
        if not isinstance(payload, dict):
            raise PayloadError("body", f"a {self.name} payload must be a JSON object")
        try:
            value = msgspec.convert(payload, self.schema, strict=False)
        except msgspec.ValidationError as error:
            raise PayloadError(*_split_msgspec_error(str(error))) from None
        data: dict[str, Any] = msgspec.to_builtins(value)
        for key, default in self.defaults.items():
            data.setdefault(key, default)
        return data


def _split_msgspec_error(text: str) -> tuple[str, str]:
    """msgspec says "Expected `str` of length <= 32 - at `$.user`"; return ("user", message)."""
    message, _, where = text.rpartition(" - at `$.")
    if not message:
        unknown = re.search(r"unknown field `([^`]+)`", text)
        if unknown:
            return unknown.group(1), "unknown field"
        missing = re.search(r"missing required field `([^`]+)`", text)
        if missing:
            return missing.group(1), "required"
        return "body", text
    return where.rstrip("`"), message


def _notify_level(data: dict[str, Any]) -> str:
    """A notification's level on the log scale, where ``critical`` is the top: ``error``."""
    levels = {"warning": "warn", "error": "error", "critical": "error"}
    return levels.get(data.get("level", "info"), "info")


BUILTIN_KINDS: tuple[Kind, ...] = (
    Kind(
        "chat",
        ChatPayload,
        KindView(
            "partials/_chat.html",
            cap=200,
            form="partials/_chat_form.html",
            scroll="bottom",
            live="polite",
        ),
        text=lambda d: f"{d['user']}: {d['text']}",
    ),
    Kind(
        "log",
        LogPayload,
        KindView(
            "partials/_log.html", cap=1000, page_history=200, snapshot_size=200, scroll="bottom"
        ),
        external_publish=False,
        text=lambda d: str(d["line"]),
        level=lambda d: d.get("level"),
    ),
    Kind(
        "ticker",
        TickerPayload,
        KindView(
            "partials/_ticker.html",
            cap=200,
            page_history=1000,
            latest_value_key="symbol",
            spark_field="price",
            head="partials/_ticker_head.html",
        ),
        external_publish=False,
        text=lambda d: str(d["symbol"]),
    ),
    Kind(
        "notify",
        NotifyPayload,
        KindView(
            "partials/_notify.html",
            cap=100,
            page_history=20,
            snapshot_size=20,
            replace_key="key",
            swap="afterbegin",
            live="polite",
        ),
        text=lambda d: " ".join(filter(None, (d.get("title"), d["message"], *d.get("tags", ())))),
        level=_notify_level,
        form_field="message",
        defaults={"level": "info"},
    ),
)


class KindRegistry:
    """The kinds this process knows: the built-ins plus those plugins register."""

    def __init__(self, kinds: tuple[Kind, ...] = BUILTIN_KINDS) -> None:
        self._kinds: dict[str, Kind] = {}
        for kind in kinds:
            self.register(kind)

    def register(self, kind: Kind) -> None:
        """Add a kind; registering a different kind under a taken name is an error."""
        existing = self._kinds.get(kind.name)
        if existing is not None and existing is not kind:
            raise ValueError(f"kind {kind.name!r} is registered twice")
        self._kinds[kind.name] = kind

    def get(self, name: str) -> Kind:
        """The kind called ``name``; KeyError when unknown."""
        return self._kinds[name]

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def names(self) -> list[str]:
        """Names of every registered kind, sorted."""
        return sorted(self._kinds)
