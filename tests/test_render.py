"""Partials rendered directly: escaping, replacing and appending swaps, caps, sparklines."""

from __future__ import annotations

import re
from itertools import count
from pathlib import Path
from typing import Any

import pytest
import re2

from app.events import Event, KindRegistry
from app.filters import compile_user_regex
from app.render import (
    Renderer,
    context_link,
    create_environment,
    key_slug,
    mark,
    names_its_file,
    sparkline_svg,
    symbol_order,
    web_link,
)

XSS = '<img src=x onerror=alert(1)><script>alert(2)</script><b hx-get="/x">b</b>'
CHANNELS = {"log": "log.app", "chat": "chat.lobby", "ticker": "ticker", "notify": "ops.alerts"}
_offsets = count(1)


def make_event(kind: str, data: dict[str, Any], offset: int | None = None) -> Event:
    offset = next(_offsets) if offset is None else offset
    channel = CHANNELS.get(kind, "x.y")
    return Event(f"e-{offset}", channel, kind, 1.7e9 + offset, data, offset, offset)


def quote(symbol: str, price: float, offset: int | None = None) -> Event:
    data = {"symbol": symbol, "price": price, "change": 0.5, "change_pct": 1.0, "volume": 1200}
    return make_event("ticker", data, offset)


@pytest.fixture
def renderer() -> Renderer:
    return Renderer(create_environment(), KindRegistry())


def tags(html: str) -> list[str]:
    return re.findall(r"<([a-zA-Z][\w-]*)", html)


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        ("chat", {"user": XSS[:32], "text": XSS}),
        ("log", {"line": XSS, "file": XSS, "level": "error"}),
        ("notify", {"message": XSS, "title": XSS, "level": "info", "tags": [XSS], "key": XSS}),
        ("ticker", {"symbol": "<b>", "price": 1.0, "change": 0.0, "change_pct": 0.0, "volume": 1}),
        ("plugin", {"anything": XSS}),
    ],
)
def test_user_text_is_escaped_in_every_partial(renderer: Renderer, kind: str, data: Any) -> None:
    html = renderer.event(make_event(kind, data)) + renderer.snapshot("c.d", kind, [])
    assert "<img" not in html and "<script" not in html and "<b " not in html and "<b>" not in html
    assert "onerror=alert(1)" in html or kind == "ticker"
    assert 'hx-get="/x"' not in html


def test_log_event_appends_a_row_and_deletes_what_falls_off(renderer: Renderer) -> None:
    data = {"line": "hi", "file": "app.log", "level": "warn", "lineno": 7}
    html = renderer.event(make_event("log", data, 2000))
    assert html.startswith(
        '<div hx-swap-oob="delete:#line-e-2000,'
        " #log-app-list > li.line:not(.old):nth-last-child(n+1001):not(.htmx-request + *),"
        " #log-app-list > li.line.old:nth-child(n+2002),"
        ' #log-app-list > template"></div>'
    )
    assert '<li id="line-e-2000" class="line lvl-warn"><span class="ln">7</span>' in html
    assert html.endswith('</li><template class="cap-end"></template>')


@pytest.mark.parametrize("offset", [0, 5, 998, 999, 5000])
def test_every_log_row_deletes_something_that_exists(renderer: Renderer, offset: int) -> None:
    """The list always ends with the template each row's delete names (no oobErrorNoTarget)."""
    event = make_event("log", {"line": "x", "file": "app.log"}, offset)
    assert "#log-app-list > template" in renderer.event(event)
    for html in (
        renderer.snapshot("log.app", "log", []),
        renderer.snapshot("log.app", "log", [event]),
        str(renderer.page_list("log.app", "log", [event])),
    ):
        assert html.endswith('<template class="cap-end"></template></ol>')


def test_a_log_row_shows_the_time_the_line_states(renderer: Renderer) -> None:
    stated = {"line": "x", "file": "app.log", "level": None, "ts": 1.7e9 - 600.25, "lineno": 3}
    html = renderer.event(make_event("log", stated, 10))
    assert '<time datetime="2023-11-14T22:03:19.750+00:00" title="written ' in html
    assert ">22:03:19</time>" in html and "read-time" not in html


def test_a_log_row_without_a_time_shows_the_read_time_as_such(renderer: Renderer) -> None:
    html = renderer.event(make_event("log", {"line": "x", "file": "app.log"}, 10))
    assert '<time class="read-time" datetime="2023-11-14T22:13:30.000+00:00"' in html
    assert 'title="read at 2023-11-14T22:13:30.000+00:00' in html
    assert '<span class="ln"></span>' in html


def test_a_line_from_days_before_shows_its_date(renderer: Renderer) -> None:
    old = {"line": "x", "file": "app.log", "ts": 1.7e9 - 3 * 86400}
    assert ">Nov 11 22:13:20</time>" in renderer.event(make_event("log", old, 0))


@pytest.mark.parametrize(
    ("channel", "file", "named"),
    [
        ("log.app", "app.log", False),
        ("log.app", "app.2026-12-01.log", False),
        ("log.system", "auth.log", True),
        ("log.system", "syslog", True),
        ("log.my-app", "My App.log", False),
    ],
)
def test_a_row_names_its_file_on_a_merged_channel(channel: str, file: str, named: bool) -> None:
    assert names_its_file(channel, file) is named


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        ("chat", {"user": "ann", "text": "hi"}),
        ("notify", {"message": "m", "level": "info", "key": "k"}),
        ("notify", {"message": "m", "level": "info"}),
        ("ticker", {"symbol": "A", "price": 1.0, "change": 0.0, "change_pct": 0.0, "volume": 1}),
        ("plugin", {"anything": 1}),
    ],
)
def test_every_row_of_every_kind_deletes_something_that_exists(
    renderer: Renderer, kind: str, data: dict[str, Any]
) -> None:
    """One delete per row, naming the template every list holds (no oobErrorNoTarget)."""
    event = make_event(kind, data, 7)
    list_id = f"{CHANNELS.get(kind, 'x.y').replace('.', '-')}-list"
    html = renderer.event(event)
    assert html.count("hx-swap-oob") == 1
    assert f'#{list_id} > template"></div>' in html
    assert html.count('<template class="cap-end"></template>') == 1
    for listing in (
        renderer.snapshot(event.channel, kind, []),
        renderer.snapshot(event.channel, kind, [event]),
    ):
        assert listing.count('<template class="cap-end"></template>') == 1


def test_snapshot_replaces_the_list_out_of_band(renderer: Renderer) -> None:
    events = [make_event("chat", {"user": "ann", "text": f"m{i}"}) for i in range(3)]
    html = renderer.snapshot("chat.lobby", "chat", events)
    assert html.startswith('<ol id="chat-lobby-list" class="rows chat-rows" hx-swap-oob="outerHTML')
    assert html.count("<li ") == 3


def test_snapshot_keeps_at_most_the_cap(renderer: Renderer) -> None:
    cap = KindRegistry().get("log").view.cap
    events = [make_event("log", {"line": str(i), "file": "a"}) for i in range(cap + 5)]
    assert renderer.snapshot("log.app", "log", events).count('<li id="line-') == cap


def test_page_list_has_no_out_of_band_attribute(renderer: Renderer) -> None:
    assert "hx-swap-oob" not in renderer.page_list("chat.lobby", "chat", [])


def test_ticker_quote_replaces_its_symbols_row(renderer: Renderer) -> None:
    renderer.event(quote("ACME", 10.0, 1))
    html = renderer.event(quote("ACME", 9.0, 2))
    assert html.startswith('<div hx-swap-oob="delete:#ticker-sym-kACME, #ticker-list > li:')
    assert '<li id="ticker-sym-kACME" class="quote tick-down"' in html
    assert f'style="order: {symbol_order("ACME")}"' in html


def test_ticker_snapshot_shows_the_latest_quote_per_symbol(renderer: Renderer) -> None:
    events = [quote("ACME", 1.0), quote("INIT", 2.0), quote("ACME", 3.0)]
    html = renderer.snapshot("ticker", "ticker", events)
    assert html.count("<li ") == 2 and "3.00" in html and ">1.00<" not in html


def test_ticker_cap_drops_the_stalest_rows(renderer: Renderer) -> None:
    html = renderer.event(quote("ACME", 10.0, 300))
    assert "#ticker-list > li:nth-last-child(n+201), #ticker-list > template" in html


def test_sparkline_draws_the_remembered_prices(renderer: Renderer) -> None:
    for offset, price in enumerate([1.0, 2.0, 1.5, 3.0], start=100):
        html = renderer.event(quote("GLOB", price, offset))
    points = re.search(r'points="([^"]+)"', html)
    assert points is not None and len(points.group(1).split()) == 4
    assert 'class="spark-up"' in html


def test_sparkline_ignores_an_event_seen_twice(renderer: Renderer) -> None:
    event = quote("DUP", 1.0, 500)
    renderer.event(event)
    renderer.snapshot("ticker", "ticker", [event])
    assert "Last" not in renderer.sparkline("ticker", "DUP")


def test_sparkline_svg_is_numbers_only() -> None:
    svg = sparkline_svg([3.0, 1.0, 2.0], width=100, height=20)
    assert 'points="0.0,2.0 50.0,18.0 100.0,10.0"' in svg
    assert "polyline" not in sparkline_svg([1.0])


def test_symbol_order_sorts_alphabetically() -> None:
    symbols = ["UMBRELLA", "ACME", "GLOBEX", "A", "INITECH"]
    assert sorted(symbols, key=symbol_order) == sorted(symbols)


def test_keyed_notification_replaces_the_earlier_one_in_place(renderer: Renderer) -> None:
    first = make_event("notify", {"message": "deploying", "level": "info", "key": "deploy 42"})
    renderer.event(first)
    renderer.event(make_event("notify", {"message": "unrelated", "level": "info"}))
    data = {"message": "deploy done", "level": "success", "key": "deploy 42"}
    html = renderer.event(make_event("notify", data))
    row_id = f"ops-alerts-key-{key_slug('deploy 42')}"
    assert html.startswith(f'<div hx-swap-oob="delete:#{row_id}, #ops-alerts-list > li:')
    assert f'<li id="{row_id}" class="note lvl-success" style="order: {-first.offset}">' in html


def test_unkeyed_notifications_are_ordered_newest_first(renderer: Renderer) -> None:
    html = renderer.event(make_event("notify", {"message": "m", "level": "info"}, 41))
    assert 'style="order: -41"' in html


def test_notification_snapshot_is_newest_first_one_per_key(renderer: Renderer) -> None:
    events = [
        make_event("notify", {"message": "old", "level": "info", "key": "k"}),
        make_event("notify", {"message": "first", "level": "info"}),
        make_event("notify", {"message": "new", "level": "info", "key": "k"}),
    ]
    html = renderer.snapshot("ops.alerts", "notify", events)
    assert "old" not in html and html.index("new") < html.index("first")


def test_only_http_links_become_links(renderer: Renderer) -> None:
    assert web_link(" https://example.org/x ") == "https://example.org/x"
    assert web_link("/channels/log.app") == "/channels/log.app"
    assert web_link("javascript:alert(1)") is None and web_link("//evil") is None
    assert web_link("/\\evil.example") is None and web_link("data:text/html,x") is None
    assert web_link("/\t/evil.example") is None
    data = {"message": "m", "level": "info", "link": "javascript:alert(1)"}
    html = renderer.event(make_event("notify", data))
    assert "href" not in html and "javascript:alert(1)" in html


def test_key_slug_is_safe_in_ids() -> None:
    assert key_slug("deploy-42") == "kdeploy-42"
    assert key_slug("x20") != key_slug(" ")
    assert re.fullmatch(r"x[0-9a-f]+", key_slug('a "b" <c>'))


def test_a_log_line_is_plain_text_whatever_it_carries(renderer: Renderer) -> None:
    """One ANSI policy: the logtail strips escapes; the page has no colour path (app/render.py)."""
    line = "\x1b[1;31mERROR\x1b[0m <b>"
    html = renderer.event(make_event("log", {"line": line, "file": "f"}))
    assert "\x1b[1;31mERROR\x1b[0m &lt;b&gt;</span>" in html and "ansi" not in html


def test_highlight_in_a_log_event(renderer: Renderer) -> None:
    event = make_event("log", {"line": "GET /a 500", "file": "f"})
    assert "<mark>500</mark>" in renderer.event(event, highlight=re2.compile(r"5\d\d"))


def test_gap_notes_every_affected_panel_and_leaves_its_list_to_the_snapshot(
    renderer: Renderer,
) -> None:
    """Emptying the list would orphan the row an in-flight "load older" inserts before."""
    html = renderer.gap(["log.app", "chat.lobby"], missed={"log.app": 12})
    assert "12 events missed — history reloaded" in html
    assert '<div id="chat-lobby-note" hx-swap-oob="innerHTML">' in html
    assert "-list" not in html


def test_status_fragment_says_live(renderer: Renderer) -> None:
    assert 'class="conn conn-live"' in renderer.status()


def test_chat_form_keeps_the_text_only_with_an_error(renderer: Renderer) -> None:
    html = renderer.form("chat.lobby", "chat", user="<ann>", text="hello", error="text: too long")
    assert 'value="&lt;ann&gt;"' in html and 'value="hello"' in html
    assert 'role="alert">text: too long<' in html
    assert 'hx-post="/api/channels/chat.lobby/events"' in html


def test_snapshot_marks_matches_when_given_the_pattern(renderer: Renderer) -> None:
    event = make_event("log", {"line": "upstream timeout", "file": "f"})
    html = renderer.snapshot("log.app", "log", [event], highlight=re2.compile("timeout"))
    assert "<mark>timeout</mark>" in html


def test_a_critical_notification_is_announced_and_styled(renderer: Renderer) -> None:
    html = renderer.event(make_event("notify", {"message": "db down", "level": "critical"}))
    assert 'class="note lvl-critical"' in html and 'role="alert"' in html
    assert 'role="alert"' not in renderer.event(make_event("notify", {"message": "m"}))


@pytest.mark.parametrize("level", ["info", "success", "warning", "error", "critical"])
def test_every_stored_notify_level_has_a_style(level: str) -> None:
    css = (Path(__file__).parents[1] / "static" / "pulseboard.css").read_text()
    assert level == "info" or f".note.lvl-{level} " in css


def test_an_older_page_puts_its_rows_and_the_next_load_older_row(renderer: Renderer) -> None:
    rows = [make_event("log", {"line": f"l{n}", "file": "app.log"}) for n in range(2)]
    html = renderer.older_rows("log.app", "log", rows, rows[0].id)
    assert '<li id="log-app-older" class="older old" hx-swap-oob="outerHTML"' in html
    assert f'hx-get="/channels/log.app/older?before={rows[0].id}"' in html
    assert html.count('class="line old ') == 2
    start = renderer.older_rows("log.app", "log", rows, None)
    assert '<li id="log-app-older" class="older old start" hx-swap-oob="outerHTML">' in start


def test_an_older_page_trims_the_scrollback_to_make_room_for_itself(renderer: Renderer) -> None:
    """Out of band, before its rows go in: a mark appended, then old rows and the mark deleted."""
    rows = [make_event("log", {"line": f"l{n}", "file": "app.log"}) for n in range(500)]
    html = renderer.older_rows("log.app", "log", rows, rows[0].id)
    mark = (
        '<div hx-swap-oob="beforeend:#log-app-list"><template class="trim-mark"></template></div>'
    )
    trim = (
        '<div hx-swap-oob="delete:#log-app-list > li.line.old:nth-child(n+1502),'
        ' #log-app-list > template.trim-mark"></div>'
    )
    assert html.startswith(mark + trim)  # 2,000 - 500 old rows stay below the "load older" row
    few = renderer.older_rows("log.app", "log", rows[:3], rows[0].id)
    assert "li.line.old:nth-child(n+1999)" in few
    empty = renderer.older_rows("log.app", "log", [], None)
    assert "li.line.old:nth-child(n+2002)" in empty


def test_the_first_older_page_ends_with_the_junction_above_the_live_rows(
    renderer: Renderer,
) -> None:
    """One row, not a "line" (neither cap counts it), after the page's rows: where they meet."""
    rows = [make_event("log", {"line": f"l{n}", "file": "app.log"}) for n in range(3)]
    html = renderer.older_rows("log.app", "log", rows, rows[0].id, junction=True)
    assert html.count('<li class="junction">') == 1
    assert html.endswith("</li>") and html.rindex(f'id="line-{rows[-1].id}"') < html.index(
        '<li class="junction">'
    )
    assert "may not be on this page" in html and '<a class="button-link" href="">Live end' in html
    assert "li.line.old:nth-child(n+1999)" in html  # old rows sit above it: their count unchanged
    later = renderer.older_rows("log.app", "log", rows, rows[0].id)
    assert "junction" not in later
    searching = renderer.older_rows("log.app", "log", [], "9-0", junction=True, searched_to=1.0)
    assert searching.count('class="junction"') == 1  # later matches go in above it
    short = renderer.older_rows("log.app", "log", [], None, junction=True)
    assert "junction" not in short  # nothing scrolled back: no hole


def test_the_start_of_a_short_log_leaves_the_cap_on(renderer: Renderer) -> None:
    """No scrollback rows: not "old", so live rows still cut the top; a click loads more later."""
    html = renderer.older_rows("log.app", "log", [], None)
    assert '<li id="log-app-older" class="older start" hx-swap-oob="outerHTML"' in html
    assert 'hx-trigger="click"' in html and "Start of retention" in html


def _rendered_per_pattern(renderer: Renderer, event: Event, pattern: Any) -> str:
    """The row as it was rendered before issue 18: the partial run with this pattern's marks."""
    template = renderer.env.get_template(renderer.view(event.kind).template)
    return template.render(
        mode="event",
        channel=event.channel,
        event=event,
        view=renderer.view(event.kind),
        mark=lambda text: mark(text, pattern),
        context_link=lambda event: context_link(event, pattern),
        sparkline=renderer.sparkline,
        direction=renderer.direction,
        note_order=renderer.note_order,
    )


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        ("log", {"line": "GET /a?b=<c>&d 200", "file": "app.log", "level": "info"}),
        ("chat", {"user": "ann", "text": "a <b>bold</b> & plain"}),
        ("notify", {"message": "disk <full> & hot", "title": "disk & more", "level": "error"}),
    ],
)
def test_a_row_is_rendered_once_and_marked_per_pattern_as_if_rendered_per_pattern(
    renderer: Renderer, kind: str, data: dict[str, Any]
) -> None:
    event = make_event(kind, data)
    patterns = [None, re2.compile("<"), re2.compile("a|&"), re2.compile("nothing")]
    rows = [renderer.event(event, pattern) for pattern in patterns]
    assert renderer.event_parts(event) is renderer.event_parts(event), "rendered once, kept"
    assert rows == [_rendered_per_pattern(renderer, event, pattern) for pattern in patterns]
    assert "<mark>" not in rows[0] and "<mark>&lt;</mark>" in rows[1]


def test_a_row_holding_slot_characters_of_its_own_is_rendered_per_pattern(
    renderer: Renderer,
) -> None:
    event = make_event("log", {"line": "x marks", "file": "a\ufdd00\ufdd1.log"})
    assert renderer.event_parts(event) is None
    pattern = re2.compile("x")
    assert renderer.event(event, pattern) == _rendered_per_pattern(renderer, event, pattern)
    assert "<mark>x</mark> marks" in renderer.event(event, pattern)


def test_a_search_result_links_to_its_context_with_the_search() -> None:
    event = make_event("log", {"line": "x", "file": "a.log"}, offset=7)
    assert context_link(event, None) == ""
    link = context_link(event, compile_user_regex('"><b>', ignore_case=True))
    assert link == (
        f'<a class="ctx" href="/channels/{event.channel}/lines/e-7'
        '?q=%22%3E%3Cb%3E&amp;ignore_case=1#line-e-7" aria-label="context"'
        ' title="The lines around this one, unfiltered"></a>'
    )


def test_a_json_line_shows_its_message_then_chips_then_the_raw_line(renderer: Renderer) -> None:
    line = (
        '{"time": "2026-12-01T13:58:04Z", "level": "error", "msg": "charge failed", "user": "al"}'
    )
    html = renderer.event(make_event("log", {"line": line, "file": "app.log", "level": "error"}))
    text = html[html.index('<span class="text">') :]
    assert text.startswith('<span class="text"><span class="msg">charge failed</span>')
    assert '<span class="chip" data-k="user">al</span>' in text
    assert ">time<" not in text and ">level<" not in text  # the row's columns show them
    assert '<details class="raw"><summary>json</summary><code>{&#34;time&#34;' in text


def test_a_long_value_is_whole_in_its_title_and_many_fields_are_counted(renderer: Renderer) -> None:
    fields = " ".join(f"k{n}=v{n}" for n in range(45))
    html = renderer.event(
        make_event("log", {"line": f"msg=x big={'y' * 60} {fields}", "file": "a"})
    )
    assert f'<span class="chip" data-k="big" title="{"y" * 60}">' in html
    assert html.count('class="chip"') == 40 and '<span class="chip more">+6 more</span>' in html


def test_structured_fields_are_escaped_and_marked(renderer: Renderer) -> None:
    line = '{"msg": "<b>hi</b>", "<img src=x onerror=alert(1)>": "timeout <script>"}'
    html = renderer.event(make_event("log", {"line": line, "file": "a"}), re2.compile("timeout"))
    assert "<img" not in html and "<script" not in html and "<b>" not in html
    assert (
        'data-k="&lt;img src=x onerror=alert(1)&gt;"><mark>timeout</mark> &lt;script&gt;</span>'
        in html
    )


def test_a_live_log_row_first_deletes_a_row_with_its_own_id(renderer: Renderer) -> None:
    """A stream resumed from the page's cursor replays rows the list holds: no row twice."""
    html = renderer.event(make_event("log", {"line": "x", "file": "app.log"}, 42))
    assert html.startswith('<div hx-swap-oob="delete:#line-e-42, ')
