"""The dashboard pages, rendered in-process: one stream per page, panels, log viewer controls."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from quart import Quart

from app import scrollback
from app.broker.base import BrokerUnavailable
from app.serve.factory import create_app
from app.settings import settings_from_dict
from app.web import dashboard
from app.web.runtime import EXTENSION

CONFIG: dict[str, Any] = {
    "channels": [
        {"name": "chat.lobby", "kind": "chat", "title": "Lobby"},
        {"name": "log.app", "kind": "log", "title": "App log"},
        {"name": "ops.deploys", "kind": "notify", "title": "Deploys"},
        {"name": "ticker", "kind": "ticker", "title": "Markets"},
    ]
}


@pytest.fixture
async def app() -> AsyncIterator[Quart]:
    quart_app = create_app(settings_from_dict(CONFIG), run_sources=False)
    async with quart_app.test_app():
        yield quart_app


async def get(app: Quart, path: str, **kwargs: Any) -> tuple[int, str, Any]:
    response = await app.test_client().get(path, **kwargs)
    return response.status_code, await response.get_data(as_text=True), response.headers


def stream_params(page: str) -> list[tuple[str, str]]:
    found = re.findall(r'sse-connect="([^"]+)"', page)
    assert len(found) == 1, "one sse-connect per page"
    url = urlsplit(html.unescape(found[0]))
    assert url.path == "/events"
    return parse_qsl(url.query)


async def test_dashboard_has_one_stream_and_a_panel_per_channel(app: Quart) -> None:
    status, page, headers = await get(app, "/")
    assert status == 200
    params = stream_params(page)
    assert [v for k, v in params if k == "channel"] == [c["name"] for c in CONFIG["channels"]]
    assert ("format", "html") in params
    for channel in ("chat.lobby", "log.app", "ops.deploys", "ticker", "_status", "gap"):
        assert f'sse-swap="{channel}"' in page
    assert 'name="user"' in page and 'name="text"' in page
    assert "script-src 'self'" in headers["Content-Security-Policy"]


async def test_published_events_are_on_the_first_render(app: Quart) -> None:
    runtime = app.extensions[EXTENSION]
    await runtime.broker.publish("chat.lobby", "chat", {"user": "ann", "text": "<b>hi</b>"})
    _status, page, _headers = await get(app, "/")
    assert "&lt;b&gt;hi&lt;/b&gt;" in page and "<b>hi" not in page


async def test_log_viewer_reconnects_with_filter_and_level(app: Quart) -> None:
    _status, page, _headers = await get(app, "/channels/log.app?q=time%7Cout&level=warning")
    params = stream_params(page)
    assert ("channel", "log.app") in params and ("q", "time|out") in params
    assert ("level", "warn") in params
    assert 'value="time|out"' in page


async def test_log_viewer_refuses_a_bad_regex_inline(app: Quart) -> None:
    _status, page, _headers = await get(app, "/channels/log.app?q=(unclosed&level=warn")
    assert 'role="alert">missing ) in the filter: (unclosed - a ( is never closed' in page
    params = stream_params(page)
    assert not any(k == "q" for k, _v in params) and ("level", "warn") in params


async def test_log_viewer_says_the_filter_is_re2_and_how_to_ignore_case(app: Quart) -> None:
    _status, page, _headers = await get(app, "/channels/log.app")
    assert 'id="filter-hint"' in page and "RE2" in page and "<code>(?i)</code>" in page


async def test_paused_log_viewer_does_not_stream(app: Quart) -> None:
    _status, page, _headers = await get(app, "/channels/log.app?paused=1&q=x")
    assert "sse-connect" not in page
    assert 'href="/channels/log.app?q=x"' in page


async def test_chat_page_remembers_the_nickname(app: Quart) -> None:
    client = app.test_client()
    client.set_cookie("localhost", dashboard.NICK_COOKIE, "zoë")
    response = await client.get("/channels/chat.lobby")
    page = await response.get_data(as_text=True)
    assert 'name="user" value="zoë"' in page


async def test_unknown_channel_is_a_404_page(app: Quart) -> None:
    status, page, _headers = await get(app, "/channels/nope")
    assert status == 404 and "No channel" in page


async def test_vendored_assets_are_served(app: Quart) -> None:
    for name in ("htmx.min.js", "htmx-ext-sse.min.js", "pulseboard.css"):
        status, _body, _headers = await get(app, f"/static/{name}")
        assert status == 200, name


async def test_form_response_clears_the_text_and_sets_the_cookie(app: Quart) -> None:
    async with app.test_request_context("/api/channels/chat.lobby/events", method="POST"):
        ok = await dashboard.form_response(
            "chat.lobby", "chat", {"user": "ann", "text": "hi"}, status=201
        )
        refused = await dashboard.form_response(
            "chat.lobby",
            "chat",
            {"user": "ann", "text": "x" * 3000},
            status=400,
            error="text: too long",
        )
    ok_html = await ok.get_data(as_text=True)
    assert ok.status_code == 201 and 'name="text" value=""' in ok_html
    assert "pulseboard_nick=ann" in ok.headers["Set-Cookie"]
    refused_html = await refused.get_data(as_text=True)
    assert refused.status_code == 400 and "text: too long" in refused_html
    assert "Set-Cookie" not in refused.headers


async def test_pages_render_while_the_broker_is_down(
    app: Quart, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unavailable(*args: object) -> None:
        raise BrokerUnavailable("redis is down")

    monkeypatch.setattr(app.extensions[EXTENSION].broker, "history", unavailable)
    status, page, _headers = await get(app, "/")
    assert status == 200 and 'sse-swap="log.app"' in page


async def test_an_htmx_chat_post_is_answered_with_the_form(app: Quart) -> None:
    client = app.test_client()
    headers = {"HX-Request": "true"}
    sent = await client.post(
        "/api/channels/chat.lobby/events", form={"user": "ann", "text": "hi"}, headers=headers
    )
    assert sent.status_code == 201 and 'name="text" value=""' in await sent.get_data(as_text=True)
    too_long = await client.post(
        "/api/channels/chat.lobby/events", form={"user": "ann", "text": "x" * 2001}, headers=headers
    )
    page = await too_long.get_data(as_text=True)
    assert too_long.status_code == 400 and 'role="alert">text: ' in page


async def test_a_rate_limited_chat_post_says_so_inline() -> None:
    config = {**CONFIG, "limits": {"chat_rate": 0.01, "chat_burst": 1}}
    quart_app = create_app(settings_from_dict(config), run_sources=False)
    async with quart_app.test_app():
        client = quart_app.test_client()
        statuses = []
        for text in ("one", "two"):
            response = await client.post(
                "/api/channels/chat.lobby/events",
                form={"user": "ann", "text": text},
                headers={"HX-Request": "true"},
            )
            statuses.append(response.status_code)
        assert statuses == [201, 429]
        assert "Slow down" in await response.get_data(as_text=True)


async def publish_lines(app: Quart, channel: str, lines: list[str]) -> list[Any]:
    broker = app.extensions[EXTENSION].broker
    return [
        await broker.publish(channel, "log", {"line": line, "file": "app.log"}) for line in lines
    ]


async def test_ignore_case_is_a_checkbox_the_stream_and_the_rows_follow(app: Quart) -> None:
    await publish_lines(app, "log.app", ["GET /a Timeout", "GET /b fine"])
    _status, page, _headers = await get(app, "/channels/log.app?q=timeout&ignore_case=1")
    assert ("q", "timeout") in stream_params(page) and ("ignore_case", "1") in stream_params(page)
    assert re.search(r'<input type="checkbox" name="ignore_case" value="1" checked>', page)
    assert "<mark>Timeout</mark>" in page and "/b fine" not in page
    assert "(ignoring case)" in page
    _status, page, _headers = await get(app, "/channels/log.app?q=timeout")
    assert "Timeout" not in page  # case-sensitive without it
    assert not re.search(r'name="ignore_case" value="1" checked', page)


async def test_a_bad_ignore_case_is_said_inline(app: Quart) -> None:
    _status, page, _headers = await get(app, "/channels/log.app?q=x&ignore_case=maybe")
    assert "Ignore case: expected 1 or 0, got &#39;maybe&#39;" in page


async def test_older_pages_and_downloads_ignore_case_too(app: Quart) -> None:
    await publish_lines(app, "log.app", ["ERROR one", "error two", "fine"])
    status, rows, _headers = await get(app, "/channels/log.app/older?q=error&ignore_case=1")
    assert status == 200 and "<mark>ERROR</mark>" in rows and "<mark>error</mark>" in rows
    status, text, _headers = await get(app, "/channels/log.app/download?q=ERROR&ignore_case=yes")
    assert (status, text) == (200, "ERROR one\nerror two\n")
    status, text, _headers = await get(app, "/channels/log.app/older?q=x&ignore_case=perhaps")
    assert status == 400 and "ignore_case" in text


async def test_only_the_first_older_page_marks_where_it_meets_the_live_rows(app: Quart) -> None:
    await publish_lines(app, "log.junction", [f"line {n}" for n in range(5)])
    _status, first, _headers = await get(app, "/channels/log.junction/older")
    assert first.count('<li class="junction">') == 1
    last = re.findall(r'id="line-([^"]+)"', first)[-1]
    _status, later, _headers = await get(app, f"/channels/log.junction/older?before={last}")
    assert "line 3" in later and 'class="junction"' not in later


@pytest.mark.parametrize(
    "path",
    ["/channels/log.app/older?q=x&befor=1-0", "/channels/log.app/download?format=text&fromat=x"],
)
async def test_older_pages_and_downloads_refuse_an_unknown_parameter(app: Quart, path: str) -> None:
    status, text, _headers = await get(app, path)
    assert status == 400
    assert "unknown query parameter" in text and ("befor" in text or "fromat" in text)


async def test_older_pages_and_downloads_take_every_filter_parameter(app: Quart) -> None:
    query = "q=boom&ignore_case=1&level=error&field=user%3Dal"
    for path in ("older?before=9-0&", "download?format=ndjson&"):
        status, _text, _headers = await get(app, f"/channels/log.app/{path}{query}")
        assert status == 200, path


async def test_a_search_that_runs_out_of_budget_goes_on_where_it_stopped(
    app: Quart, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dashboard, "OLDER_SCAN_LIMIT", 10)
    monkeypatch.setattr(scrollback, "SCAN_BATCH", 10)
    await publish_lines(app, "log.deep", ["needle far back"])
    await publish_lines(app, "log.deep", [f"hay {n}" for n in range(25)])
    status, rows, _headers = await get(app, "/channels/log.deep/older?q=needle")
    assert status == 200 and "needle" not in rows
    assert re.search(r"Searched back to <time datetime=\"[^\"]+\">[^<]+</time> — searching", rows)
    assert 'hx-trigger="intersect, click"' in rows and ">Search older</button>" in rows
    url = html.unescape(re.search(r'hx-get="([^"]+)"', rows).group(1))  # type: ignore[union-attr]
    found = ""
    for _ in range(5):  # 26 events, 10 a request: the third request reaches the needle
        _status, found, _headers = await get(app, url + "&q=needle")
        if "needle" in found:
            break
        url = html.unescape(re.search(r'hx-get="([^"]+)"', found).group(1))  # type: ignore[union-attr]
    assert "<mark>needle</mark> far back" in found
    assert 'class="ctx" href="/channels/log.deep/lines/' in found


async def test_highlights_are_escaped_even_across_a_tag(app: Quart) -> None:
    await publish_lines(app, "log.xss", ['a <script>alert("x")</script> b'])
    _status, page, _headers = await get(app, "/channels/log.xss?q=t%3E%5Cw%2B%5C%28")  # t>\w+\(
    assert "<script>" not in page.split("</head>", 1)[1].replace('<script src="', "")
    assert "&lt;scrip<mark>t&gt;alert(</mark>&#34;x&#34;)&lt;/script&gt;" in page


async def test_the_context_view_shows_the_line_and_its_neighbours_unfiltered(app: Quart) -> None:
    events = await publish_lines(
        app, "log.ctx", [f"line {n} {'ERR' if n % 2 else 'ok'}" for n in range(100)]
    )
    target = events[50]
    status, page, _headers = await get(
        app, f"/channels/log.ctx/lines/{target.id}?q=err&ignore_case=1"
    )
    assert status == 200 and "sse-connect" not in page
    rows = re.findall(r'<li id="line-([^"]+)" class="line([^"]*)"', page)
    assert [row_id for row_id, _class in rows] == [e.id for e in events[25:76]]
    assert [c for row_id, c in rows if "anchor" in c] == [" anchor lvl-none"]
    assert f'id="line-{target.id}" class="line anchor lvl-none" aria-current="true"' in page
    assert "line 51 <mark>ERR</mark>" in page and "line 50 ok" in page  # unfiltered, marked
    assert 'href="/channels/log.ctx?q=err&amp;ignore_case=1">Back to the search' in page
    status, page, _headers = await get(app, f"/channels/log.ctx/lines/{target.id}?context=2")
    assert status == 200 and len(re.findall(r'<li id="line-', page)) == 5
    assert "Show more around it" in page and "context=50" in page


async def test_a_line_no_longer_retained_says_so(app: Quart) -> None:
    events = await publish_lines(app, "log.gone", ["only line"])
    epoch = events[0].id.rsplit("-", 1)[0]
    for missing in (f"{epoch}-999999", "zz-1", "nonsense"):
        status, page, _headers = await get(app, f"/channels/log.gone/lines/{missing}")
        assert status == 404 and "is no longer retained" in page, missing


@pytest.mark.parametrize(
    ("query", "field"),
    [("context=-1", "context"), ("context=many", "context"), ("level=warn", "level"), ("q=(", "q")],
)
async def test_bad_context_view_parameters_are_a_400(app: Quart, query: str, field: str) -> None:
    events = await publish_lines(app, "log.bad", ["a"])
    status, body, _headers = await get(app, f"/channels/log.bad/lines/{events[0].id}?{query}")
    assert status == 400 and field in body


async def publish_line_ids(app: Quart, channel: str, *lines: str) -> list[str]:
    runtime = app.extensions[EXTENSION]
    ids = []
    for line in lines:
        ids.append(await runtime.broker.publish(channel, "log", {"line": line, "file": "x.log"}))
    return [getattr(event_id, "id", event_id) for event_id in ids]


async def test_log_viewer_streams_with_its_field_filters(app: Quart) -> None:
    _status, page, _headers = await get(
        app, "/channels/log.app?field=user%3Dalice&field=http.status%3D500"
    )
    params = stream_params(page)
    assert [v for k, v in params if k == "field"] == ["user=alice", "http.status=500"]
    assert 'name="field" value="user=alice"' in page
    assert "with <code>user=alice</code> and <code>http.status=500</code>" in page
    vals = html.unescape(re.findall(r"hx-vals='([^']+)'", page)[0])
    assert '"field": ["user=alice", "http.status=500"]' in vals


async def test_log_viewer_refuses_a_bad_field_inline(app: Quart) -> None:
    status, page, _headers = await get(app, "/channels/log.app?field=nouser&level=warn")
    assert status == 200
    assert 'role="alert">Field: expected NAME=VALUE such as user=alice' in page
    assert not any(k == "field" for k, _v in stream_params(page))


async def test_log_viewer_resumes_after_its_newest_row_instead_of_a_snapshot(app: Quart) -> None:
    """The stream must not replace the rows: an alert link's #line-<id> stays the target."""
    ids = await publish_line_ids(app, "log.resume", "one", "two")
    _status, page, _headers = await get(app, "/channels/log.resume")
    assert ("last_event_id", ids[-1]) in stream_params(page)
    assert f'id="line-{ids[-1]}"' in page
    assert 'hx-trigger="intersect"' in page  # "load older" may fetch at once


async def test_an_empty_log_viewer_waits_for_the_snapshot(app: Quart) -> None:
    _status, page, _headers = await get(app, "/channels/log.app")
    assert not any(k == "last_event_id" for k, _v in stream_params(page))


async def test_older_pages_and_downloads_apply_the_field_filter(app: Quart) -> None:
    await publish_line_ids(
        app,
        "log.fields",
        '{"msg": "a", "user": "alice"}',
        '{"msg": "b", "user": "bob"}',
        "level=info msg=c user=alice",
        "plain user=alice",
    )
    client = app.test_client()
    query = {"field": "user=alice", "format": "text"}
    download = await client.get("/channels/log.fields/download", query_string=query)
    assert (await download.get_data(as_text=True)).splitlines() == [
        '{"msg": "a", "user": "alice"}',
        "level=info msg=c user=alice",
    ]
    older = await client.get("/channels/log.fields/older", query_string={"field": "user=alice"})
    rows = await older.get_data(as_text=True)
    assert rows.count('<li id="line-') == 2 and ">bob<" not in rows
    for path, args in (
        ("/channels/log.fields/older", {}),
        ("/channels/log.fields/download", {}),
        ("/events", {"channel": "log.fields"}),
    ):
        bad = await client.get(path, query_string={**args, "field": "x"})
        assert bad.status_code == 400, path
        assert (await bad.get_json())["detail"]["field"] == "field"
