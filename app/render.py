"""Events to HTML fragments for the ``format=html`` stream: one Jinja partial per kind.

Each kind names its partial, its cap and the rest of how it is shown in its
:class:`~app.events.KindView`; a partial gets that view as ``view``. Kinds that
name no partial of their own use ``_default.html``. A partial is called in one of three modes:

- ``mode == "event"``: one live or resumed event (``event``), appended to its
  panel's list or replacing a row (ticker symbol, notification ``key``);
- ``mode == "snapshot"``: the recent ``events`` of ``channel`` as one
  out-of-band swap that *replaces* the panel's list (fresh connect, gap);
- ``mode == "page"``: the same list without the out-of-band attribute, for
  the first render of a page.

Deliberate oddities:
- The DOM is bounded by the fragments themselves: each row carries an
  out-of-band ``delete`` of ``#<list> > li:nth-last-child(n+CAP+1)`` (the template below
  counts as a child; CAP is the view's ``cap``), so whatever was filtered,
  resumed or skipped, a list never holds more than CAP rows.
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
- A JSON or logfmt log line is shown structured (:mod:`app.linefields`, parsed
  here, not at publish: the frame is rendered once per event for every
  subscriber): message, then at most ``MAX_CHIPS`` fields as one-element
  chips, then the raw line in a ``<details>``. Every swap walks the list
  (htmx's id lookup, the cap's delete), so a row's element count is what a
  fast log costs the browser.
- A ticker or keyed notification row is replaced by deleting the old row
  out-of-band and inserting the new one (htmx has no upsert); rows keep their
  place through CSS ``order``: derived from the symbol for quotes, from the
  offset of a key's first notification for notifications (newest first).
- The Renderer remembers (bounded) the recent ``spark_field`` values per
  ``latest_value_key`` (ticker prices), for sparklines and the tick direction,
  and each ``replace_key``'s place (notification keys): it is fed by every
  event it renders, so after a restart a key starts a new place.
- A live event is rendered once whatever the number of ``q=`` patterns
  (issue 18): its partial runs with ``mark`` leaving a numbered slot
  (:class:`EventParts`), and each pattern's row, the unmarked one included,
  is the slots filled with that pattern's marks. The parts of the newest
  ``PARTS_KEPT`` events are kept, so every stream that asks reuses them.
  Should the row hold the slot characters itself (an unmarked field), the
  event is rendered per pattern as before (the slot count tells).
- A partial may split its live row in three with ``part_break`` (the log's does): the
  delete it goes in with, the row, the cap's template. A run of such rows of one channel
  then goes out as one message (:meth:`Renderer.run_edges`, :mod:`app.frames`): one delete
  for all of them, the rows, one template; the browser swaps once instead of k times.
- No ANSI path: payloads are plain text. The logtail strips escape sequences
  before it publishes (:mod:`app.sources.logtail.lines`), because every consumer of a
  line needs the text a person reads: the JSON stream, ``q=`` and alert
  patterns (a colour code splits ``ERROR`` from its match), level detection
  and ``pulseboard subscribe``. Built-in sources never send an escape, so
  colouring them here only ran for third-party lines; such a line is escaped
  like any other text and nothing from it becomes a tag or attribute.
"""

from __future__ import annotations

import re
import zlib
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import jinja2
from markupsafe import Markup, escape
from markupsafe._speedups import _escape_inner  # escape's C core, a str (no Markup made)

from app.acks import alert_state
from app.events import Event, KindRegistry, KindView
from app.highlight import KEPT as PATTERNS_KEPT
from app.highlight import match_spans
from app.linefields import structured

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
SCROLLBACK_CAP = 2_000  # older rows a viewer keeps while scrolled back (partials/_log.html)
MAX_CHIPS = 40  # fields a structured log row shows as chips; the raw line has them all
SPARK_POINTS = 60
SPARK_KEYS = 1000
NOTE_KEYS = 10_000
PARTS_KEPT = 256  # events whose rendered parts are kept (a fan-out's batch, many times over)
_SLOT = re.compile("\ufdd0([0-9]+)\ufdd1")  # a noncharacter pair no partial writes
_BREAK = "\ufdd2"  # part_break while the parts are drawn: another noncharacter
DEFAULT_VIEW = KindView()
_SAFE_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_CHANNEL_JUNK = re.compile(r"[^a-z0-9_-]+")


def dom_id(channel: str, *parts: object) -> str:
    """A DOM id for a channel's element: ``dom_id("log.app", 7)`` → ``log-app-7``."""
    base = channel.replace(".", "-")
    return "-".join([base, *(str(part) for part in parts)])


def cap_from(cap: int, new_rows: int) -> int:
    """The first position from the end a live row's delete removes when ``new_rows`` come.

    The list ends with the cap's template (position 1); the rows at positions 2 to the
    result less one stay, ``cap - new_rows`` of them, so with the new rows there are
    ``cap``. More new rows than ``cap``: every live row goes (the run sends its last
    ``cap``).

    >>> cap_from(1000, 1), cap_from(1000, 20), cap_from(1000, 5000)
    (1001, 982, 2)
    """
    return max(cap - new_rows + 2, 2)


def key_slug(text: str) -> str:
    """``text`` as a piece of a DOM id: ``k`` + itself when plain, else ``x`` + its hex."""
    return "k" + text if _SAFE_KEY.match(text) else "x" + text.encode().hex()


def symbol_order(symbol: str) -> int:
    """A CSS ``order`` that sorts rows alphabetically by their first four characters."""
    value = 0
    for char in symbol.upper()[:4].ljust(4, "\0"):
        value = value * 128 + min(ord(char), 127)
    return value


def latest(events: Sequence[Event], field: str | None) -> list[Event]:
    """``events`` keeping only the newest per ``data[field]`` (events without it all stay)."""
    if field is None:
        return list(events)
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


def create_environment(kinds: KindRegistry | None = None) -> jinja2.Environment:
    """The Jinja environment for pages and partials (autoescape always on).

    The ``template_dir`` of each kind's view is searched after the built-in templates:
    a plugin's partials are found, and cannot replace a page or a built-in partial.
    """
    extra = [] if kinds is None else [kinds.get(n).view.template_dir for n in kinds.names()]
    loader = jinja2.FileSystemLoader([TEMPLATES, *(path for path in extra if path is not None)])
    env = jinja2.Environment(loader=loader, autoescape=True, enable_async=False)
    env.globals.update(
        dom_id=dom_id,
        key_slug=key_slug,
        symbol_order=symbol_order,
        latest=latest,
        nick_colour=nick_colour,
        web_link=web_link,
        names_its_file=names_its_file,
        alert_state=alert_state,
        scrollback_cap=SCROLLBACK_CAP,
        cap_from=cap_from,
        structured=structured,
        max_chips=MAX_CHIPS,
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

    def __init__(self, env: jinja2.Environment, kinds: KindRegistry) -> None:
        self.env = env
        self.kinds = kinds
        self._partials: dict[str, jinja2.Template] = {}
        self._statuses: dict[str, str] = {}
        self._prices: OrderedDict[tuple[str, str], deque[tuple[int, float]]] = OrderedDict()
        self._slots: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._parts: OrderedDict[str, tuple[Event, EventParts | None]] = OrderedDict()

    def event(self, event: Event, highlight: Any = None) -> str:
        """One event as its panel's row (``highlight``: a compiled pattern to mark)."""
        parts = self.event_parts(event)
        if parts is None:  # the row held a slot of its own: render with the marks
            return self._partial(event.kind).render(
                mode="event",
                channel=event.channel,
                event=event,
                **self._helpers(event.kind, highlight),
            )
        return parts.html(highlight)

    def event_parts(self, event: Event) -> EventParts | None:
        """The row of ``event`` rendered once, its marked texts left as slots (kept a while)."""
        kept = self._parts.get(event.id)
        if kept is not None and kept[0] is event:
            return kept[1]
        self.remember([event])
        texts: list[str | None] = []  # None: the slot of the row's context link

        def slot(text: str | None) -> Markup:
            texts.append(text)
            return Markup(f"\ufdd0{len(texts) - 1}\ufdd1")

        helpers = self._helpers(event.kind, None) | {
            "mark": slot,
            "context_link": lambda event: slot(None),
            "part_break": Markup(_BREAK),
        }
        html = self._partial(event.kind).render(
            mode="event", channel=event.channel, event=event, **helpers
        )
        sections = html.split(_BREAK)
        head, row, tail = sections if len(sections) == 3 else ("", html, "")
        pieces = _SLOT.split(row)
        whole = len(pieces) // 2 == len(texts) == html.count("\ufdd0")  # no stray slot
        parts = EventParts(event, pieces, texts, head, tail) if whole else None
        self._parts[event.id] = (event, parts)
        if len(self._parts) > PARTS_KEPT:
            self._parts.popitem(last=False)
        return parts

    def run_edges(self, events: Sequence[Event]) -> tuple[str, str] | None:
        """The delete and the template that frame a run of ``events``' rows as one swap.

        ``events``: two or more of one channel and kind, oldest first. The delete names
        every event's row and makes room for them (``cap_from``); the rows go between
        the two (:meth:`EventParts.row`). None when the kind's partial does not split
        its row (no ``part_break``): its events go one message each. The run's
        message is kept by :mod:`app.frames`, so this runs once per run.
        """
        last = events[-1]
        parts = self.event_parts(last)
        if parts is None or not parts.splits:
            return None
        html = self._partial(last.kind).render(
            mode="run",
            channel=last.channel,
            ids=[event.id for event in events],
            **self._helpers(last.kind, None) | {"part_break": Markup(_BREAK)},
        )
        sections = html.split(_BREAK)
        return (sections[0], sections[1]) if len(sections) == 2 else None

    def snapshot(self, channel: str, kind: str, events: list[Event], highlight: Any = None) -> str:
        """A channel's recent events as one swap that replaces the panel's content."""
        self.remember(events)
        return self._partial(kind).render(
            mode="snapshot", channel=channel, events=events, **self._helpers(kind, highlight)
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
                **self._helpers(kind, highlight),
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
        searched_to: float | None = None,
        junction: bool = False,
    ) -> str:
        """A page of scrollback rows and the next "load older" row (``cursor`` None: the start).

        ``searched_to``: the page ran out of scan budget there; the next row says so
        and goes on searching from ``cursor``. ``junction``: the page goes in just above
        the live rows (the first page, asked without ``before``), so it ends with the row
        that marks where the two meet: the live end's cap leaves a hole there.
        """
        return self._partial(kind).render(
            mode="older",
            channel=channel,
            events=list(events),
            cursor=cursor,
            gap=gap,
            searched_to=searched_to,
            junction=junction,
            now=datetime.now(UTC).timestamp(),
            **self._helpers(kind, highlight),
        )

    def context_list(
        self, channel: str, kind: str, events: Sequence[Event], anchor: str, highlight: Any = None
    ) -> Markup:
        """The lines around one (``anchor``, an event id, marked): the context view's list.

        Its rows link nowhere: they already are the context.
        """
        helpers = {**self._helpers(kind, highlight), "context_link": lambda event: ""}
        return Markup(
            self._partial(kind).render(
                mode="context", channel=channel, events=list(events), anchor=anchor, **helpers
            )
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

    def view(self, kind: str) -> KindView:
        """How ``kind`` is shown; a kind this process does not know gets the default view."""
        return self.kinds.get(kind).view if kind in self.kinds else DEFAULT_VIEW

    def head(self, kind: str) -> Markup:
        """What a panel of ``kind`` shows above its list (the ticker's column names), or nothing."""
        name = self.view(kind).head
        return Markup(self.env.get_template(name).render()) if name else Markup("")

    def form(
        self,
        channel: str,
        kind: str,
        user: str = "",
        text: str = "",
        error: str | None = None,
        *,
        focus: bool = False,
    ) -> str:
        """The view's post form for ``channel``: emptied after a post, refilled with an error.

        ``focus`` puts the cursor back in the message field (the answer to a post).
        Kinds without a form get an empty string.
        """
        name = self.view(kind).form
        if name is None:
            return ""
        return self.env.get_template(name).render(
            channel=channel, user=user, text=text, error=error, focus=focus
        )

    def remember(self, events: Iterable[Event]) -> None:
        """Record the values sparklines draw and where each replaceable row sits."""
        for event in events:
            view = self.view(event.kind)
            if view.spark_field is not None and view.latest_value_key is not None:
                self._record(event, view.latest_value_key, view.spark_field)
            if view.replace_key is not None and event.data.get(view.replace_key):
                self._place(event, view.replace_key)

    def note_order(self, event: Event) -> int:
        """CSS ``order`` of a row: newest first, a ``replace_key`` keeps its first place."""
        field = self.view(event.kind).replace_key
        key = event.data.get(field) if field else None
        return self._slots.get((event.channel, key), -event.offset) if key else -event.offset

    def sparkline(self, channel: str, key: str) -> Markup:
        """An inline SVG of the recent values of ``key`` (a ticker symbol) on ``channel``."""
        values = [value for _offset, value in self._prices.get((channel, key), ())]
        return sparkline_svg(values)

    def direction(self, event: Event) -> str:
        """``up``, ``down`` or ``flat``: this event's ``spark_field`` against the one before it.

        Without an earlier value, a ``change`` field in the payload (the ticker's) says.
        """
        view = self.view(event.kind)
        if view.spark_field is None or view.latest_value_key is None:
            return "flat"
        value = float(event.data[view.spark_field])
        history = self._prices.get((event.channel, str(event.data[view.latest_value_key])), ())
        earlier = [value for offset, value in history if offset < event.offset]
        previous = earlier[-1] if earlier else value - float(event.data.get("change", 0))
        return _compare(value, previous)

    def _record(self, event: Event, key_field: str, value_field: str) -> None:
        key = (event.channel, str(event.data.get(key_field)))
        history = self._prices.get(key)
        if history is None:
            history = self._prices[key] = deque(maxlen=SPARK_POINTS)
            while len(self._prices) > SPARK_KEYS:
                self._prices.popitem(last=False)
        if not history or event.offset > history[-1][0]:
            history.append((event.offset, float(event.data[value_field])))

    def _place(self, event: Event, field: str) -> None:
        slot = (event.channel, str(event.data[field]))
        self._slots.setdefault(slot, -event.offset)
        self._slots.move_to_end(slot)
        while len(self._slots) > NOTE_KEYS:
            self._slots.popitem(last=False)

    def _helpers(self, kind: str, highlight: Any) -> dict[str, Any]:
        return {
            "view": self.view(kind),
            "mark": lambda text: mark(text, highlight),
            "context_link": lambda event: context_link(event, highlight),
            "sparkline": self.sparkline,
            "direction": self.direction,
            "note_order": self.note_order,
            "part_break": Markup(""),
        }

    def _partial(self, kind: str) -> jinja2.Template:
        template = self._partials.get(kind)
        if template is None:
            template = self._partials[kind] = self.env.get_template(self.view(kind).template)
        return template


class EventParts:
    """A rendered row with a slot per marked text (and its context link, a search's).

    One pattern's row is a join away: ``html`` fills the slots in one pass,
    the context link from its per-event and per-pattern halves.
    """

    __slots__ = ("_link_halves", "event", "head", "pieces", "splits", "tail", "texts")

    def __init__(
        self, event: Event, pieces: list[str], texts: list[str | None], head: str, tail: str
    ) -> None:
        self.event = event
        self.pieces = pieces  # html, slot number, html, slot number, ..., html
        self.texts = [texts[int(pieces[at])] for at in range(1, len(pieces), 2)]  # slot order
        self.head, self.tail = head, tail  # around the row when the partial splits it
        self.splits = bool(head or tail)
        self._link_halves: tuple[str, str] | None = None  # the context link's, once asked

    def html(self, highlight: Any = None) -> str:
        """The row with ``highlight``'s matches marked (None: every text only escaped)."""
        if self.splits:
            return f"{self.head}{self.row(highlight)}{self.tail}"
        return self.row(highlight)

    def row(self, highlight: Any = None) -> str:
        """The row alone, without the delete and template a partial that splits puts around it."""
        pieces = self.pieces
        if len(pieces) == 1:
            return pieces[0]
        out = pieces.copy()
        at = 1
        for text in self.texts:
            if text is None:
                out[at] = self._link(highlight)
            else:
                out[at] = marked(text, match_spans(text, highlight))
            at += 2
        return "".join(out)

    def _link(self, pattern: Any) -> str:
        if pattern is None:
            return ""
        if self._link_halves is None:
            self._link_halves = link_halves(self.event.channel, self.event.id)
        head, tail = self._link_halves
        return f"{head}{_search_html(pattern)}{tail}"


def _compare(price: float, previous: float) -> str:
    if price > previous:
        return "up"
    return "down" if price < previous else "flat"


# -- text -------------------------------------------------------------------


def mark(text: str, pattern: Any, offset: int = 0, spans: Sequence[tuple[int, int]] = ()) -> Markup:
    """Escape ``text`` and wrap the matches of ``pattern`` (or the given ``spans``) in <mark>."""
    return Markup(marked(text, spans or match_spans(text, pattern), offset))


def marked(text: str, spans: Sequence[tuple[int, int]], offset: int = 0) -> str:
    """``text`` escaped, the ``spans`` (less ``offset``) in <mark>: html as a plain str.

    Every ``q=`` pattern of a line runs this (issue 18), so it escapes with
    MarkupSafe's C function itself: its ``escape`` makes a ``Markup`` of each
    piece, at six times the cost.

    >>> marked("a<b>c", [(1, 4)])
    'a<mark>&lt;b&gt;</mark>c'
    """
    if not spans:
        return _escape_inner(text)
    pieces: list[str] = []
    position = 0
    for start, end in spans:
        start, end = max(start - offset, position), min(end - offset, len(text))
        if start >= end:
            continue
        pieces += (
            _escape_inner(text[position:start]),
            "<mark>",
            _escape_inner(text[start:end]),
            "</mark>",
        )
        position = end
    pieces.append(_escape_inner(text[position:]))
    return "".join(pieces)


def context_link(event: Event, pattern: Any) -> Markup:
    """A search result's link to its context view; nothing when no search is on.

    Its word is CSS's (``.ctx::after``): copying a row, or reading its text, gets the line only.
    """
    if pattern is None:
        return Markup("")
    head, tail = link_halves(event.channel, event.id)
    return Markup(f"{head}{_search_html(pattern)}{tail}")


def link_halves(channel: str, event_id: str) -> tuple[str, str]:
    """A context link's html before and after its search (the part each pattern has its own).

    The context view of a line: its neighbours, the line anchored, the search highlighted.

    >>> link_halves("log.app", "ab-7")[0]
    '<a class="ctx" href="/channels/log.app/lines/ab-7'
    """
    line = quote(event_id, safe="-_.~:")
    return (
        f'<a class="ctx" href="{escape(f"/channels/{channel}/lines/{line}")}',
        f'{escape(f"#line-{line}")}" aria-label="context"'
        ' title="The lines around this one, unfiltered"></a>',
    )


@lru_cache(maxsize=PATTERNS_KEPT)
def _search_html(pattern: Any) -> str:
    """The query a context link carries for ``pattern``, escaped (kept per pattern object)."""
    query = [("q", pattern.pattern)]
    if not pattern.options.case_sensitive:
        query.append(("ignore_case", "1"))
    return _escape_inner(f"?{urlencode(query)}")


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
