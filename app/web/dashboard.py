"""The dashboard pages: boards (``/``, ``/boards/<name>``) and ``/channels/<channel>``.

A board (app/boards.py) shows the channels its names and patterns match, the
viewer may read, configured or created by publishing. Its page polls
``/boards/<name>/changes`` every ``BOARD_WATCH_S`` seconds with the hash of
its channel list: "no change" is a bodiless 204; a change answers the whole
page, whose ``.app`` htmx swaps in (a new ``sse-connect`` with the new
channel list, whose fresh snapshot refills every panel). No script, one small
request per interval, and the stream itself stays exactly as it was.

Pages are rendered once with each panel's recent history; from then on one
``sse-connect`` per page (``/events?channel=...&format=html``) keeps every
panel live. The log viewer's filter, level, field filters (``field=NAME=VALUE``,
repeatable) and pause are plain GET parameters that re-render the page with a
new ``sse-connect`` URL: no script of ours. That URL carries the page's newest
row as ``last_event_id``, so the stream resumes after the rows the page
rendered rather than replacing them with a snapshot (an anchored row stays
the browser's ``:target``).

The viewer's scrollback: the list's first row is a "load older" row that
htmx fetches (``/channels/<channel>/older``) when it scrolls into view; the
answer inserts a page of older rows above the first row and replaces the
"load older" row with the next one (or with "start of retention"); the first
page ends with a row marking where it meets the live rows. The
first request names no cursor: htmx targets the list's first row and sends
its id (``HX-Target: line-<event id>``), so the cursor is right even after
the live end's cap has removed rows from the top. How the cap and the
scrollback share the list: ``templates/partials/_log.html``.

A filter makes that scrollback a search over everything retained: a page
scans for at most ``OLDER_TIME_LIMIT_S`` and, short of matches, ends in a
"searched back to <time>, searching older…" row that carries on from where
it stopped. Each match links to ``/channels/<channel>/lines/<id>``, the
context view: its neighbours unfiltered, the line anchored and marked.

``form_response`` is what the publish API answers to an htmx post from a
panel's form (a kind whose view has a ``form``: chat): the form again, emptied
after a post or refilled with an inline error, and the nickname remembered in
a cookie. How many events a page starts with is the kind's view's ``page_history``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import msgspec
from markupsafe import Markup
from quart import Blueprint, Response, request
from werkzeug.datastructures import MultiDict

from app.boards import Board, Tile, board_readable, boards_from_settings, place, signature
from app.broker.base import BrokerError
from app.events import (
    LEVEL_ORDER,
    Event,
    KindRegistry,
    PayloadError,
    parse_event_id,
    validate_channel,
)
from app.filters import IGNORE_CASE, EventFilter, compile_user_regex, parse_flag, parse_level
from app.linefields import parse_field_filter
from app.scrollback import around, older_page, retained
from app.web.errors import error_response
from app.web.params import check_known, whole_number
from app.web.runtime import Panel, Site, current_runtime
from app.web.security import current_grant, may_read, signed_in
from app.web.streaming.registry import OFFLINE_AFTER_S, STALE_AFTER_S

log = logging.getLogger("pulseboard.dashboard")

STATIC = Path(__file__).resolve().parent.parent.parent / "static"
NICK_COOKIE = "pulseboard_nick"
NICK_MAX_AGE_S = 365 * 24 * 3600
OLDER_PAGE = 500  # rows per "load older" page
OLDER_SCAN_LIMIT = 50_000  # events one filtered page may scan (app/scrollback.py)
OLDER_TIME_LIMIT_S = 0.5  # and seconds it may scan: a search answers at once, then goes on
CONTEXT_LINES = 25  # the context view's lines before and after the anchored one, by default
CONTEXT_MAX = 1000
CONTEXT_PARAMETERS = frozenset({"context", "q", IGNORE_CASE})
FILTER_PARAMETERS = frozenset({"q", IGNORE_CASE, "level", "field"})
OLDER_PARAMETERS = FILTER_PARAMETERS | {"before"}
DOWNLOAD_PARAMETERS = FILTER_PARAMETERS | {"format"}
DOWNLOADS = {
    "text": ("text/plain; charset=utf-8", "log"),
    "ndjson": ("application/x-ndjson", "ndjson"),
}
ROW_ID_PREFIX = "line-"
LEVELS = tuple(LEVEL_ORDER)
BOARD_WATCH_S = 5
PUBLISHED_MAX = 500  # channels created by publishing that pages list (nav, default board)
TRUE_WORDS = ("1", "true", "yes")
# how a bad parameter's message starts on the page (q's messages name "the filter" themselves)
_LABELS = {"q": "", "level": "Level: ", IGNORE_CASE: "Ignore case: ", "field": "Field: "}
blueprint = Blueprint("dashboard", __name__, static_folder=str(STATIC), static_url_path="/static")


@dataclass(frozen=True)
class LogView:
    """The log viewer's controls as the request set them, checked."""

    q: str = ""
    level: str = ""
    paused: bool = False
    ignore_case: bool = False
    error: str | None = None
    filter_args: tuple[tuple[str, str], ...] = ()
    fields: tuple[str, ...] = ()  # the field=NAME=VALUE filters as typed, good or bad

    def event_filter(self, kinds: KindRegistry) -> EventFilter:
        """The filter the stream applies for these parameters (the page applies it too)."""
        args = dict(self.filter_args)
        ignore_case = IGNORE_CASE in args
        pattern = compile_user_regex(args["q"], ignore_case=ignore_case) if "q" in args else None
        fields = tuple(parse_field_filter(v) for k, v in self.filter_args if k == "field")
        return EventFilter(kinds, pattern=pattern, level=args.get("level"), fields=fields)

    def vals(self) -> dict[str, str | list[str]]:
        """The checked filters as htmx's ``hx-vals`` (a repeated ``field`` as a list)."""
        vals: dict[str, str | list[str]] = {k: v for k, v in self.filter_args if k != "field"}
        fields = [v for k, v in self.filter_args if k == "field"]
        return {**vals, "field": fields} if fields else vals


@blueprint.get("/")
async def dashboard() -> Response:
    """The first board the viewer may read (the default board shows every readable channel)."""
    runtime = current_runtime()
    boards = _boards(runtime)
    if not boards:
        return _no_access(runtime)
    return await _board_page(runtime, boards[0])


@blueprint.get("/boards/<name>")
async def board_page(name: str) -> Response:
    """A board by name; an unknown name is the not-found page, an unreadable one "no access"."""
    runtime = current_runtime()
    board = _find_board(runtime, name)
    if isinstance(board, Response):
        return board
    return await _board_page(runtime, board)


@blueprint.get("/boards/<name>/changes")
async def board_changes(name: str) -> Response:
    """204 while the board's channels hash to ``have``; else the page, for htmx to swap in."""
    runtime = current_runtime()
    board = _find_board(runtime, name)
    if isinstance(board, Response):
        return board
    if signature(_tiles(runtime, board)) == request.args.get("have", ""):
        return Response("", status=204)
    return await _board_page(runtime, board)


async def _board_page(runtime: Site, board: Board) -> Response:
    tiles = _tiles(runtime, board)
    lists = {tile.channel: await _initial_list(runtime, tile) for tile in tiles}
    kiosk = request.args.get("kiosk", "") in TRUE_WORDS
    watch = [("have", signature(tiles)), *([("kiosk", "1")] if kiosk else [])]
    return _page(
        runtime,
        "dashboard.html",
        board=board,
        tiles=tiles,
        kiosk=kiosk,
        watch_url=f"/boards/{board.name}/changes?{urlencode(watch)}",
        watch_s=BOARD_WATCH_S,
        panels=_readable_panels(runtime),
        lists=lists,
        stream_url=stream_url([tile.channel for tile in tiles]) if tiles else None,
    )


def _tiles(runtime: Site, board: Board) -> list[Tile]:
    """The board's tiles, at most as many as one stream may carry."""
    candidates = [(p.channel, p.kind, p.title) for p in _readable_panels(runtime)]
    return place(board, candidates)[: runtime.settings.limits.channels_per_stream]


def _all_boards(runtime: Site) -> list[Board]:
    return boards_from_settings(runtime.settings.boards)


def _boards(runtime: Site) -> list[Board]:
    """The boards the viewer may read some channel of (the navigation lists these)."""
    return [board for board in _all_boards(runtime) if _board_readable(runtime, board)]


def _board_readable(runtime: Site, board: Board) -> bool:
    if not runtime.authority.read_required:
        return True
    grant = current_grant()
    return grant is not None and board_readable(board, grant)


def _find_board(runtime: Site, name: str) -> Board | Response:
    """The board called ``name``, else the not-found page (or "no access" when unreadable)."""
    board = next((board for board in _all_boards(runtime) if board.name == name), None)
    if board is None:
        return _page(
            runtime, "not_found.html", status=404, board_name=name, panels=_readable_panels(runtime)
        )
    return board if _board_readable(runtime, board) else _no_access(runtime, board_name=name)


def _no_access(runtime: Site, **what: str) -> Response:
    """The 403 page: the board or channel exists (or may), but this viewer may not read it."""
    return _page(runtime, "no_access.html", status=403, panels=_readable_panels(runtime), **what)


@blueprint.get("/channels/<channel>")
async def channel_page(channel: str) -> Response:
    """One channel full-screen: the log viewer for log channels, else the kind's board."""
    runtime = current_runtime()
    if not may_read(runtime, channel):  # whether it exists or not: an unreadable name tells nothing
        return _no_access(runtime, channel=channel)
    panel = await _find_panel(runtime, channel)
    if panel is None:
        return _page(
            runtime, "not_found.html", status=404, channel=channel, panels=_readable_panels(runtime)
        )
    if panel.kind == "log":
        return await _log_viewer(runtime, panel)
    return _page(
        runtime,
        "channel.html",
        panel=panel,
        panels=_readable_panels(runtime),
        lists={panel.channel: await _initial_list(runtime, panel)},
        stream_url=stream_url([panel.channel]),
    )


async def _log_viewer(runtime: Site, panel: Panel) -> Response:
    view = read_log_view(request.args)
    event_filter = view.event_filter(runtime.kinds)
    recent = await _recent(runtime, panel)
    events = [e for e in recent if event_filter.accepts(e)]
    # The stream resumes after the page's newest line instead of replacing the list with a
    # snapshot: the rows stay the ones the page rendered, so an alert link's #line-<id>
    # stays the browser's :target and "load older" may fetch at once.
    cursor = (("last_event_id", recent[-1].id),) if recent else ()
    log_list = runtime.renderer.page_list(
        panel.channel,
        panel.kind,
        events,
        highlight=event_filter.pattern,
        streamed=not view.paused and not cursor,
    )
    live_url = stream_url([panel.channel], (*view.filter_args, *cursor))
    return _page(
        runtime,
        "log.html",
        panel=panel,
        panels=_readable_panels(runtime),
        view=view,
        levels=LEVELS,
        log_list=log_list,
        stream_url=None if view.paused else live_url,
        pause_url=_self_url(panel.channel, view, paused=not view.paused),
        live_end_url=_self_url(panel.channel, view, paused=view.paused),
        download_url=f"/channels/{panel.channel}/download?"
        + urlencode([*view.filter_args, ("format", "")]),
    )


@blueprint.get("/channels/<channel>/older")
async def older_lines(channel: str) -> Response:
    """The page of log rows before ``before`` (or the row htmx targets), and the next "load older".

    Parameters: ``before`` (an event id; else the ``HX-Target`` row's, else the
    newest), ``q`` and ``level`` as on the viewer.
    """
    runtime = current_runtime()
    panel = await _log_panel(runtime, channel)
    if isinstance(panel, Response):
        return panel
    check_known(request.args.keys(), OLDER_PARAMETERS)
    event_filter = _strict_filter(runtime, request.args)
    before = _cursor(request.args.get("before"), request.headers.get("HX-Target"))
    page = await older_page(
        runtime.broker,
        channel,
        before,
        event_filter.accepts,
        want=OLDER_PAGE,
        scan_limit=OLDER_SCAN_LIMIT,
        time_limit_s=OLDER_TIME_LIMIT_S if event_filter.active else None,
        line_pattern=event_filter.pattern,
    )
    html = runtime.renderer.older_rows(
        channel,
        panel.kind,
        page.events,
        page.cursor,
        gap=page.gap,
        highlight=event_filter.pattern,
        searched_to=page.searched_to,
        junction="before" not in request.args,
    )
    return Response(html, content_type="text/html; charset=utf-8")


@blueprint.get("/channels/<channel>/lines/<line_id>")
async def line_context(channel: str, line_id: str) -> Response:
    """One line with ``context`` lines before and after it, unfiltered, the line anchored.

    ``q`` and ``ignore_case`` only highlight (the search it came from). A line no
    longer retained is a page that says so (404), never an error.
    """
    runtime = current_runtime()
    check_known(request.args.keys(), CONTEXT_PARAMETERS)
    panel = await _find_panel(runtime, channel)
    if panel is None or panel.kind != "log" or not may_read(runtime, channel):
        return _page(
            runtime, "not_found.html", status=404, channel=channel, panels=_readable_panels(runtime)
        )
    context = whole_number(
        request.args.get("context", str(CONTEXT_LINES)), "context", 0, CONTEXT_MAX
    )
    q, ignore_case = request.args.get("q", ""), parse_flag(request.args.get("ignore_case", ""))
    pattern = compile_user_regex(q, ignore_case=ignore_case) if q else None
    searched = [("q", q), *([(IGNORE_CASE, "1")] if ignore_case else [])] if q else []
    view = LogView(q, ignore_case=ignore_case, filter_args=tuple(searched))
    found = await around(runtime.broker, channel, line_id, context)
    if found is None:
        log_list = None
    else:
        lines = [*found.before, found.event, *found.after]
        log_list = runtime.renderer.context_list(channel, panel.kind, lines, line_id, pattern)
    return _page(
        runtime,
        "log_context.html",
        status=200 if found else 404,
        panel=panel,
        panels=_readable_panels(runtime),
        view=view,
        found=found,
        line_id=line_id,
        context=context,
        log_list=log_list,
        more_url=_context_url(channel, line_id, view, min(CONTEXT_MAX, max(2 * context, 50))),
        search_url=_self_url(channel, view, paused=False),
    )


def _context_url(channel: str, line_id: str, view: LogView, context: int) -> str:
    query = urlencode([*view.filter_args, ("context", str(context))])
    line = quote(line_id, safe="-_.~:")
    return f"/channels/{channel}/lines/{line}?{query}#line-{line}"


@blueprint.get("/channels/<channel>/download")
async def download(channel: str) -> Response:
    """Every retained line of the view (``q``, ``level``), streamed: ``format=text|ndjson``."""
    runtime = current_runtime()
    panel = await _log_panel(runtime, channel)
    if isinstance(panel, Response):
        return panel
    check_known(request.args.keys(), DOWNLOAD_PARAMETERS)
    event_filter = _strict_filter(runtime, request.args)
    fmt = request.args.get("format", "text")
    if fmt not in DOWNLOADS:
        raise PayloadError("format", f"expected one of {', '.join(DOWNLOADS)}, got {fmt!r}")
    content_type, suffix = DOWNLOADS[fmt]
    encode = _ndjson if fmt == "ndjson" else _text

    async def body() -> AsyncIterator[bytes]:
        async for events in retained(runtime.broker, channel, event_filter.accepts):
            yield b"".join(map(encode, events))

    response = Response(body(), content_type=content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{channel}.{suffix}"'
    response.timeout = None  # a download of any size: Quart's RESPONSE_TIMEOUT must not cut it
    return response


def _text(event: Event) -> bytes:
    return str(event.data.get("line", "")).encode() + b"\n"


def _ndjson(event: Event) -> bytes:
    return msgspec.json.encode(event.as_json_dict()) + b"\n"


async def _log_panel(runtime: Site, channel: str) -> Panel | Response:
    """The log channel's panel, else a 404 (also for a channel the reader may not see)."""
    panel = await _find_panel(runtime, channel)
    if panel is None or panel.kind != "log" or not may_read(runtime, channel):
        return error_response(404, f"no log channel {channel!r}", {"channel": channel})
    return panel


def _strict_filter(runtime: Site, args: MultiDict[str, str]) -> EventFilter:
    """The ``q``, ``ignore_case``, ``level`` and ``field`` filter; a bad one is a 400."""
    q, level = args.get("q", ""), args.get("level", "")
    ignore_case = parse_flag(args.get("ignore_case", ""))
    pattern = compile_user_regex(q, ignore_case=ignore_case) if q else None
    fields = tuple(parse_field_filter(text) for text in args.getlist("field") if text)
    return EventFilter(
        runtime.kinds,
        pattern=pattern,
        level=parse_level(level) if level else None,
        fields=fields,
    )


def _cursor(before: str | None, target: str | None) -> str | None:
    """``before``, else the event id of the row htmx targets (``line-<id>``), else None."""
    if before:
        if parse_event_id(before) is None:
            raise PayloadError("before", f"{before[:80]!r} is not an event id")
        return before
    if target and target.startswith(ROW_ID_PREFIX):
        row = target.removeprefix(ROW_ID_PREFIX)
        return row if parse_event_id(row) is not None else None
    return None


def read_log_view(args: MultiDict[str, str]) -> LogView:
    """The viewer's ``q``, ``ignore_case``, ``level``, ``field`` and ``paused`` parameters.

    A bad one becomes ``error``.
    """
    q, level = args.get("q", ""), args.get("level", "")
    fields = tuple(text for text in args.getlist("field") if text)
    kept: list[tuple[str, str]] = []
    errors: list[str] = []
    ignore_case = False
    try:
        ignore_case = parse_flag(args.get("ignore_case", ""))
    except PayloadError as error:
        errors.append(_LABELS[IGNORE_CASE] + error.message)
    checks = [("q", q, _check_regex), ("level", level, parse_level)]
    checks += [("field", text, _check_field) for text in fields]
    for name, value, normalise in checks:
        if not value:
            continue
        try:
            kept.append((name, normalise(value)))
        except PayloadError as error:
            errors.append(_LABELS[name] + error.message)
    if ignore_case:
        kept.insert(1 if kept and kept[0][0] == "q" else 0, (IGNORE_CASE, "1"))
    paused = args.get("paused", "") in ("1", "true", "yes")
    errors_text = "; ".join(errors) or None
    return LogView(q, level, paused, ignore_case, errors_text, tuple(kept), fields)


def _check_field(text: str) -> str:
    parse_field_filter(text)
    return text


def _check_regex(text: str) -> str:
    compile_user_regex(text)
    return text


def stream_url(channels: list[str], extra: tuple[tuple[str, str], ...] = ()) -> str:
    """The page's ``sse-connect`` URL: every channel it shows, html format, plus filters."""
    query = [("channel", channel) for channel in channels] + [("format", "html"), *extra]
    return "/events?" + urlencode(query)


async def form_response(
    channel: str, kind: str, fields: Mapping[str, str], *, status: int, error: str | None = None
) -> Response:
    """The kind's form as the answer to an htmx post: emptied on success, else with ``error``.

    Example (the publish API, for a chat channel and ``HX-Request: true``)::

        return await form_response(channel, "chat", form, status=201)
        return await form_response(channel, "chat", form, status=429, error="Slow down: ...")
    """
    renderer = current_runtime().renderer
    user = fields.get("user", "")[:64]
    text = "" if error is None else fields.get("text", "")
    html = renderer.form(channel, kind, user=user, text=text, error=error, focus=True)
    response = Response(html, status=status, content_type="text/html; charset=utf-8")
    if error is None and user:
        response.set_cookie(
            NICK_COOKIE, user, max_age=NICK_MAX_AGE_S, samesite="Lax", httponly=True
        )
    return response


def _readable_panels(runtime: Site) -> list[Panel]:
    """Configured channels, then those created by publishing: the ones the viewer may read."""
    panels = [panel for panel in runtime.panels if may_read(runtime, panel.channel)]
    configured = {panel.channel for panel in runtime.panels}
    published = runtime.broker.channels(
        limit=PUBLISHED_MAX, visible=lambda name: name not in configured
    )
    panels += [
        Panel(info.name, info.kind, info.name) for info in published if may_read(runtime, info.name)
    ]
    return panels


async def _find_panel(runtime: Site, channel: str) -> Panel | None:
    try:
        validate_channel(channel)
    except PayloadError:
        return None
    for panel in runtime.panels:
        if panel.channel == channel:
            return panel
    kind = await runtime.broker.kind_of(channel)
    return None if kind is None else Panel(channel, kind, channel)


async def _recent(runtime: Site, panel: Panel | Tile) -> list[Event]:
    """The newest events a page starts with; none while the broker is down (the stream fills in)."""
    wanted = runtime.renderer.view(panel.kind).page_history
    try:
        page = await runtime.broker.history(panel.channel, None, runtime.settings.broker.history)
    except BrokerError as error:
        log.warning("page without history: channel=%s error=%s", panel.channel, error)
        return []
    return page.events[-wanted:]


async def _initial_list(runtime: Site, panel: Panel | Tile) -> Markup:
    return runtime.renderer.page_list(panel.channel, panel.kind, await _recent(runtime, panel))


def _self_url(channel: str, view: LogView, *, paused: bool) -> str:
    query = [*view.filter_args, *([("paused", "1")] if paused else [])]
    return f"/channels/{channel}" + (f"?{urlencode(query)}" if query else "")


def _page(runtime: Site, template: str, *, status: int = 200, **context: Any) -> Response:
    html = runtime.renderer.env.get_template(template).render(
        renderer=runtime.renderer,
        boards=_boards(runtime),
        signed_in=signed_in(),
        nick=request.cookies.get(NICK_COOKIE, "")[:32],
        retry_after_s=STALE_AFTER_S,
        stale_after_s=OFFLINE_AFTER_S,
        **context,
    )
    return Response(html, status=status, content_type="text/html; charset=utf-8")
