"""Events to HTML fragments for the ``format=html`` stream: one Jinja partial per kind.

Every partial lives in ``templates/partials/_<kind>.html`` and is rendered
with autoescaping on; kinds without a partial of their own use
``_default.html``. A partial is called in one of three modes:

- ``mode == "event"``: one live or resumed event (``event``), appended to its
  panel's list or replacing a row (ticker symbol, notification ``key``);
- ``mode == "snapshot"``: the recent ``events`` of ``channel`` as one
  out-of-band swap that *replaces* the panel's list (fresh connect, gap);
- ``mode == "page"``: the same list without the out-of-band attribute, for
  the first render of a page.

Deliberate oddities:
- The DOM is bounded by the fragments themselves: each row carries an
  out-of-band ``delete`` of ``#<list> > li:nth-last-child(n+CAP+1)`` (the template below
  counts as a child), so whatever was filtered, resumed or skipped, a list never
  holds more than CAP rows.
  Every list holds one empty ``<template>`` that each row's delete also
  removes and the row puts back (``partials/_cap.html``): the delete always
  finds a target, so htmx logs no ``oobErrorNoTarget`` however few rows the
  page holds (it rendered 200 while the channel holds thousands; a ticker has
  a handful of symbols; a key's row may be gone), and the frame stays the
  same for every subscriber.
- A log row shows the time the line states (``ts``) when it has one, else the
  read time marked as such; the file's own line number when known; and its
  file's name when the file is not the one the channel is named after (a glob
  merged into one channel such as ``log.system``).
- A ticker or keyed notification row is replaced by deleting the old row
  out-of-band and inserting the new one (htmx has no upsert); rows keep their
  place through CSS ``order``: derived from the symbol for quotes, from the
  offset of a key's first notification for notifications (newest first).
- The Renderer remembers (bounded) recent ticker prices, for sparklines and
  the tick direction, and each notification key's place: it is fed by every
  event it renders, so after a restart a key starts a new place.
- ANSI SGR colours in log lines become spans with fixed class names; every
  other escape sequence (an OSC-8 link, a cursor move) stays visible as text,
  in caret notation (ESC as ``^[``, as ``cat -v`` shows it; fonts lack "␛").
  Nothing from a line ever becomes a tag or attribute.
"""

from __future__ import annotations

import re
import zlib
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from markupsafe import Markup

from app.events import Event

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
CAPS = {"log": 1000, "chat": 200, "notify": 100, "ticker": 200}
SCROLLBACK_CAP = 50_000  # log rows a viewer holds while scrolled back (partials/_log.html)
DEFAULT_CAP = 200
SPARK_POINTS = 60
SPARK_KEYS = 1000
NOTE_KEYS = 10_000
_SAFE_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_ESCAPES = re.compile(
    r"\x1b\[([0-9;]*)m|\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b"
)
_SGR_COLOURS = {**{30 + i: f"fg{i}" for i in range(8)}, **{90 + i: f"fg{i + 8}" for i in range(8)}}
_SGR_FLAGS = {1: "bold", 2: "dim", 3: "italic", 4: "underline"}
_CHANNEL_JUNK = re.compile(r"[^a-z0-9_-]+")


def dom_id(channel: str, *parts: object) -> str:
    """A DOM id for a channel's element: ``dom_id("log.app", 7)`` → ``log-app-7``."""
    base = channel.replace(".", "-")
    return "-".join([base, *(str(part) for part in parts)])


def key_slug(text: str) -> str:
    """``text`` as a piece of a DOM id: ``k`` + itself when plain, else ``x`` + its hex."""
    return "k" + text if _SAFE_KEY.match(text) else "x" + text.encode().hex()


def symbol_order(symbol: str) -> int:
    """A CSS ``order`` that sorts rows alphabetically by their first four characters."""
    value = 0
    for char in symbol.upper()[:4].ljust(4, "\0"):
        value = value * 128 + min(ord(char), 127)
    return value


def latest(events: Sequence[Event], field: str) -> list[Event]:
    """``events`` keeping only the newest per ``data[field]`` (events without it all stay)."""
    newest = {event.data[field]: event for event in events if event.data.get(field) is not None}
    keep = set(map(id, newest.values()))
    return [e for e in events if e.data.get(field) is None or id(e) in keep]


def names_its_file(channel: str, file: str) -> bool:
    """True when a log row should name its file: ``file`` would not have named ``channel``.

    >>> names_its_file("log.app", "app.log"), names_its_file("log.system", "auth.log")
    (False, True)
    """
    stem = _CHANNEL_JUNK.sub("-", file.split(".", 1)[0].lower()).strip("-_")
    return channel != f"log.{stem}"


def nick_colour(user: str) -> int:
    """One of eight colours, always the same for the same nickname."""
    return zlib.crc32(user.encode()) % 8


def web_link(link: str) -> str | None:
    """``link`` when it is an http(s) URL or a path on this site; None for anything else."""
    link = link.strip()
    if not link.isprintable():
        return None
    if link.startswith("/") and not link.startswith("//") and "\\" not in link:
        return link
    parts = urlsplit(link)
    return link if parts.scheme in ("http", "https") and parts.netloc else None


def create_environment(extra_paths: list[Path] | None = None) -> jinja2.Environment:
    """The Jinja environment for pages and partials (autoescape always on)."""
    loader = jinja2.FileSystemLoader([TEMPLATES, *(extra_paths or [])])
    env = jinja2.Environment(loader=loader, autoescape=True, enable_async=False)
    env.globals.update(
        dom_id=dom_id,
        key_slug=key_slug,
        symbol_order=symbol_order,
        latest=latest,
        nick_colour=nick_colour,
        web_link=web_link,
        names_its_file=names_its_file,
        caps=CAPS,
        scrollback_cap=SCROLLBACK_CAP,
        default_cap=DEFAULT_CAP,
    )
    env.filters.update(
        clock=clock,
        isotime=isotime,
        stamp=stamp,
        price=lambda v: f"{v:,.2f}",
        signed=lambda v: f"{v:+,.2f}",
        percent=lambda v: f"{v:+.2f}%",
        compact=compact,
    )
    return env


class Renderer:
    """Renders events, snapshots, gaps and the connection status as HTML fragments."""

    def __init__(self, env: jinja2.Environment) -> None:
        self.env = env
        self._partials: dict[str, jinja2.Template] = {}
        self._statuses: dict[str, str] = {}
        self._prices: OrderedDict[tuple[str, str], deque[tuple[int, float]]] = OrderedDict()
        self._slots: OrderedDict[tuple[str, str], int] = OrderedDict()

    def event(self, event: Event, highlight: Any = None) -> str:
        """One event as its panel's row (``highlight``: a compiled pattern to mark)."""
        self.remember([event])
        return self._partial(event.kind).render(
            mode="event", channel=event.channel, event=event, **self._helpers(highlight)
        )

    def snapshot(self, channel: str, kind: str, events: list[Event], highlight: Any = None) -> str:
        """A channel's recent events as one swap that replaces the panel's content."""
        self.remember(events)
        return self._partial(kind).render(
            mode="snapshot", channel=channel, events=events, **self._helpers(highlight)
        )

    def page_list(
        self,
        channel: str,
        kind: str,
        events: Sequence[Event] = (),
        highlight: Any = None,
        *,
        streamed: bool = False,
    ) -> Markup:
        """A panel's list as the page first renders it (before the stream's snapshot).

        ``streamed``: a stream's snapshot will replace the list, so the log viewer's
        "load older" row waits for it (a page fetched before would land in the old list).
        """
        self.remember(events)
        return Markup(
            self._partial(kind).render(
                mode="page",
                channel=channel,
                events=list(events),
                streamed=streamed,
                **self._helpers(highlight),
            )
        )

    def older_rows(
        self,
        channel: str,
        kind: str,
        events: Sequence[Event],
        cursor: str | None,
        *,
        gap: bool = False,
        highlight: Any = None,
    ) -> str:
        """A page of scrollback rows and the next "load older" row (``cursor`` None: the start)."""
        return self._partial(kind).render(
            mode="older",
            channel=channel,
            events=list(events),
            cursor=cursor,
            gap=gap,
            **self._helpers(highlight),
        )

    def gap(self, channels: list[str], missed: dict[str, int] | None = None) -> str:
        """The note shown when the server could not replay everything the client missed."""
        return self.env.get_template("partials/_gap.html").render(
            channels=channels, missed=missed or {}, now=datetime.now(UTC).timestamp()
        )

    def status(self, state: str = "live") -> str:
        """The connection-state fragment a stream refreshes on every heartbeat (rendered once)."""
        html = self._statuses.get(state)
        if html is None:
            template = self.env.get_template("partials/_status.html")
            html = self._statuses[state] = template.render(state=state)
        return html

    def chat_form(
        self,
        channel: str,
        user: str = "",
        text: str = "",
        error: str | None = None,
        *,
        focus: bool = False,
    ) -> str:
        """The chat form of ``channel``: emptied after a post, refilled with an error.

        ``focus`` puts the cursor back in the message field (the answer to a post).
        """
        return self.env.get_template("partials/_chat_form.html").render(
            channel=channel, user=user, text=text, error=error, focus=focus
        )

    def remember(self, events: Iterable[Event]) -> None:
        """Record ticker prices for sparklines and where each notification key sits."""
        for event in events:
            if event.kind == "ticker":
                self._record(event)
            elif event.kind == "notify" and event.data.get("key"):
                self._place(event)

    def note_order(self, event: Event) -> int:
        """CSS ``order`` of a notification: newest first, a key keeps its first place."""
        key = event.data.get("key")
        return self._slots.get((event.channel, key), -event.offset) if key else -event.offset

    def sparkline(self, channel: str, symbol: str) -> Markup:
        """An inline SVG of the recent prices of ``symbol`` on ``channel``."""
        prices = [price for _offset, price in self._prices.get((channel, symbol), ())]
        return sparkline_svg(prices)

    def direction(self, event: Event) -> str:
        """``up``, ``down`` or ``flat``: this quote against the one before it."""
        history = self._prices.get((event.channel, str(event.data["symbol"])), deque())
        earlier = [price for offset, price in history if offset < event.offset]
        previous = earlier[-1] if earlier else float(event.data["price"]) - event.data["change"]
        return _compare(float(event.data["price"]), previous)

    def _record(self, event: Event) -> None:
        key = (event.channel, str(event.data["symbol"]))
        history = self._prices.get(key)
        if history is None:
            history = self._prices[key] = deque(maxlen=SPARK_POINTS)
            while len(self._prices) > SPARK_KEYS:
                self._prices.popitem(last=False)
        if not history or event.offset > history[-1][0]:
            history.append((event.offset, float(event.data["price"])))

    def _place(self, event: Event) -> None:
        slot = (event.channel, str(event.data["key"]))
        self._slots.setdefault(slot, -event.offset)
        self._slots.move_to_end(slot)
        while len(self._slots) > NOTE_KEYS:
            self._slots.popitem(last=False)

    def _helpers(self, highlight: Any) -> dict[str, Any]:
        return {
            "mark": lambda text: mark(text, highlight),
            "ansi": lambda text: ansi_markup(text, highlight),
            "sparkline": self.sparkline,
            "direction": self.direction,
            "note_order": self.note_order,
        }

    def _partial(self, kind: str) -> jinja2.Template:
        template = self._partials.get(kind)
        if template is None:
            template = self.env.select_template(
                [f"partials/_{kind}.html", "partials/_default.html"]
            )
            self._partials[kind] = template
        return template


def _compare(price: float, previous: float) -> str:
    if price > previous:
        return "up"
    return "down" if price < previous else "flat"


# -- text -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Segment:
    """A run of log text and the CSS classes its ANSI attributes map to."""

    text: str
    classes: str = ""


def ansi_segments(line: str) -> list[Segment]:
    """Split ``line`` at ANSI escapes: SGR colours become classes, other escapes stay visible."""
    segments: list[Segment] = []
    style: dict[str, str] = {}
    position = 0
    for match in _ESCAPES.finditer(line):
        _append(segments, line[position : match.start()], style)
        if match.group(1) is not None:
            style = _apply_sgr(style, match.group(1))
        else:
            _append(segments, match.group(0).replace("\x1b", "^[").replace("\x07", "^G"), style)
        position = match.end()
    _append(segments, line[position:], style)
    return segments


def _append(segments: list[Segment], text: str, style: dict[str, str]) -> None:
    if text:
        segments.append(Segment(text, " ".join(f"ansi-{v}" for v in style.values())))


def _apply_sgr(style: dict[str, str], params: str) -> dict[str, str]:
    style = dict(style)
    for code in (int(part) if part.isdigit() else 0 for part in params.split(";")):
        if code == 0:
            style.clear()
        elif code in _SGR_COLOURS:
            style["fg"] = _SGR_COLOURS[code]
        elif code == 39:
            style.pop("fg", None)
        elif code in _SGR_FLAGS:
            style[_SGR_FLAGS[code]] = _SGR_FLAGS[code]
    return style


def match_spans(text: str, pattern: Any) -> list[tuple[int, int]]:
    """Non-empty ``(start, end)`` spans where ``pattern`` matches ``text``."""
    if pattern is None:
        return []
    return [(m.start(), m.end()) for m in pattern.finditer(text) if m.end() > m.start()]


def mark(text: str, pattern: Any, offset: int = 0, spans: Sequence[tuple[int, int]] = ()) -> Markup:
    """Escape ``text`` and wrap the matches of ``pattern`` (or the given ``spans``) in <mark>."""
    spans = spans or match_spans(text, pattern)
    pieces: list[Markup] = []
    position = 0
    for start, end in spans:
        start, end = max(start - offset, position), min(end - offset, len(text))
        if start >= end:
            continue
        pieces.append(Markup.escape(text[position:start]))
        pieces.append(Markup("<mark>%s</mark>") % text[start:end])
        position = end
    pieces.append(Markup.escape(text[position:]))
    return Markup("").join(pieces)


def ansi_markup(line: str, pattern: Any = None) -> Markup:
    """A log line with its ANSI colours as spans and the matches of ``pattern`` marked."""
    segments = ansi_segments(line)
    spans = match_spans("".join(segment.text for segment in segments), pattern)
    pieces: list[Markup] = []
    offset = 0
    for segment in segments:
        body = mark(segment.text, None, offset, spans) if spans else Markup.escape(segment.text)
        offset += len(segment.text)
        if segment.classes:
            body = Markup('<span class="%s">%s</span>') % (segment.classes, body)
        pieces.append(body)
    return Markup("").join(pieces)


def clock(timestamp: float) -> str:
    """``HH:MM:SS`` in UTC."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%H:%M:%S")


def stamp(timestamp: float, read_at: float) -> str:
    """``HH:MM:SS`` in UTC, after ``Mon DD`` when not the day of ``read_at``."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    if moment.date() == datetime.fromtimestamp(read_at, UTC).date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%b %d %H:%M:%S")


def isotime(timestamp: float) -> str:
    """ISO 8601 in UTC with milliseconds, for ``<time datetime>``."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


def compact(value: float) -> str:
    """``1234567`` → ``1.23M``."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= size:
            return f"{value / size:.2f}{suffix}"
    return f"{value:,.0f}"


def sparkline_svg(prices: Sequence[float], width: int = 120, height: int = 32) -> Markup:
    """A polyline of ``prices`` scaled into a ``width`` by ``height`` SVG (numbers only)."""
    label = "No price history yet" if len(prices) < 2 else f"Last {len(prices)} prices"
    svg = Markup(
        '<svg class="spark" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">'
    ) % (width, height, width, height, label)
    if len(prices) < 2:
        return svg + Markup("</svg>")
    low, high = min(prices), max(prices)
    span = (high - low) or 1.0
    step = width / (len(prices) - 1)
    points = " ".join(
        f"{i * step:.1f},{height - 2 - (p - low) / span * (height - 4):.1f}"
        for i, p in enumerate(prices)
    )
    trend = _compare(prices[-1], prices[0])
    return svg + Markup('<polyline class="spark-%s" points="%s"/></svg>') % (trend, points)
