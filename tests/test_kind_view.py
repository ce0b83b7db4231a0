"""One place per kind: render, the pages, the publish API and the broker read the kind's view.

Each test registers a kind that differs from the built-ins only in its view
(a chat schema with its own cap, a form, a latest-value key...), so what it
checks can only come from the view, never from the kind's name.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from quart import Quart

from app.broker.base import Start
from app.broker.memory import MemoryBroker
from app.events import ChatPayload, Event, Kind, KindRegistry, KindView, TickerPayload
from app.render import Renderer, create_environment
from app.serve.factory import create_app
from app.serve.runtime import Runtime
from app.settings import settings_from_dict
from app.web.runtime import EXTENSION

_offsets = count(1)


def chat_like(name: str, **view: Any) -> Kind:
    """A kind with chat's schema and partial, and the view fields given."""
    return Kind(name, ChatPayload, KindView("partials/_chat.html", **view))


def event(kind: str, data: dict[str, Any], channel: str = "x.y") -> Event:
    offset = next(_offsets)
    return Event(f"e-{offset}", channel, kind, 1.7e9 + offset, data, offset, offset)


def says(kind: str, text: str) -> Event:
    return event(kind, {"user": "ann", "text": text})


def quote(kind: str, symbol: str, price: float) -> Event:
    data = {"symbol": symbol, "price": price, "change": 0.0, "change_pct": 0.0, "volume": 1}
    return event(kind, data, "quotes")


def renderer_for(*kinds: Kind) -> Renderer:
    registry = KindRegistry()
    for kind in kinds:
        registry.register(kind)
    return Renderer(create_environment(registry), registry)


def rows(html: str) -> int:
    return html.count("<li ")


# -- the view itself -----------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cap": 0}, "view.cap"),
        ({"page_history": -1}, "view.page_history"),
        ({"snapshot_size": -1}, "view.snapshot_size"),
        ({"spark_field": "price"}, "view.spark_field"),
    ],
)
def test_a_bad_view_is_refused_naming_the_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        KindView(**fields)


def test_page_history_and_snapshot_agree_for_every_kind_that_keeps_every_event() -> None:
    """The page and a fresh stream start a panel alike (latest-value kinds: newest per key)."""
    for name in KindRegistry().names():
        view = KindRegistry().get(name).view
        if view.latest_value_key is None:
            assert view.page_history == view.snapshot_size, name


# -- render reads it -----------------------------------------------------------


def test_the_cap_bounds_the_fragment_and_the_snapshot() -> None:
    renderer = renderer_for(chat_like("shout", cap=3))
    assert "#x-y-list > li:nth-last-child(n+4)" in renderer.event(says("shout", "hi"))
    events = [says("shout", str(i)) for i in range(10)]
    assert rows(renderer.snapshot("x.y", "shout", events)) == 3
    assert rows(renderer.page_list("x.y", "shout", events)) == 3


def test_the_template_is_the_views_not_the_kinds_name() -> None:
    renderer = renderer_for(chat_like("shout"))
    assert 'class="message"' in renderer.event(says("shout", "hi"))


def test_a_kind_without_a_template_of_its_own_gets_the_default_partial() -> None:
    renderer = renderer_for(Kind("plain", ChatPayload))
    assert 'class="generic"' in renderer.event(says("plain", "hi"))


def test_a_template_dir_brings_a_partial_of_its_own(tmp_path: Path) -> None:
    (tmp_path / "partials").mkdir()
    (tmp_path / "partials" / "_probe.html").write_text(
        "<li class=probe>{{ view.cap }} {{ event.data.text }}</li>"
    )
    view = KindView("partials/_probe.html", template_dir=tmp_path, cap=7)
    renderer = renderer_for(Kind("probe", ChatPayload, view))
    assert renderer.event(says("probe", "<b>")) == "<li class=probe>7 &lt;b&gt;</li>"


def test_the_latest_value_key_keeps_one_row_per_key() -> None:
    view = KindView("partials/_ticker.html", latest_value_key="symbol")
    renderer = renderer_for(Kind("quotes", TickerPayload, view))
    events = [quote("quotes", "A", 1.0), quote("quotes", "B", 2.0), quote("quotes", "A", 3.0)]
    html = renderer.snapshot("quotes", "quotes", events)
    assert rows(html) == 2 and "3.00" in html and ">1.00<" not in html


def test_the_spark_field_is_remembered_per_key() -> None:
    view = KindView("partials/_ticker.html", latest_value_key="symbol", spark_field="volume")
    renderer = renderer_for(Kind("quotes", TickerPayload, view))
    for volume in (5, 1, 9):
        data = {"symbol": "A", "price": 1.0, "change": 0.0, "change_pct": 0.0, "volume": volume}
        renderer.event(event("quotes", data, "quotes"))
    points = re.search(r'points="([^"]+)"', renderer.sparkline("quotes", "A"))
    assert points is not None and len(points.group(1).split()) == 3


def test_the_replace_key_keeps_a_rows_first_place() -> None:
    notify = KindRegistry().get("notify")
    alerts = Kind("alerts", notify.schema, KindView("partials/_notify.html", replace_key="key"))
    renderer = renderer_for(alerts)
    first = event("alerts", {"message": "a", "level": "info", "key": "k"})
    renderer.event(first)
    again = event("alerts", {"message": "b", "level": "info", "key": "k"})
    assert f'style="order: {-first.offset}"' in renderer.event(again)


# -- the broker reads it -------------------------------------------------------


async def test_the_snapshot_size_is_what_a_fresh_html_stream_starts_with() -> None:
    kinds = KindRegistry()
    kinds.register(chat_like("shout", snapshot_size=2))
    broker = MemoryBroker(kinds, history_size=100, max_lag=100)
    for text in "abcde":
        await broker.publish("x.y", "shout", {"user": "ann", "text": text})
    async with broker.subscribe(["x.y"], Start(snapshot=True)) as subscription:
        assert [e.data["text"] for e in subscription.snapshots["x.y"]] == ["d", "e"]
    await broker.close()


# -- the pages and the publish API read it -------------------------------------

VIEWS = (
    chat_like("capped", cap=3, page_history=100),
    chat_like("short", cap=100, page_history=4),
    chat_like(
        "room",
        form="partials/_chat_form.html",
        head="partials/_ticker_head.html",
        swap="afterbegin",
        scroll="bottom",
        live="polite",
    ),
    Kind("plain", ChatPayload),
)


@pytest.fixture
async def app() -> AsyncIterator[Quart]:
    config = {"limits": {"chat_rate": 0.001, "chat_burst": 1}}
    quart_app = create_app(settings_from_dict(config), run_sources=False)
    runtime: Runtime = quart_app.extensions[EXTENSION]
    for kind in VIEWS:
        runtime.kinds.register(kind)
    async with quart_app.test_app():
        for kind in VIEWS:
            await runtime.broker.declare(f"{kind.name}.a", kind.name)
        yield quart_app


async def page_rows(app: Quart, channel: str) -> int:
    runtime: Runtime = app.extensions[EXTENSION]
    kind = await runtime.broker.kind_of(channel)
    assert kind is not None
    for i in range(10):
        await runtime.publish(channel, kind, {"user": "ann", "text": f"m{i}"})
    response = await app.test_client().get(f"/channels/{channel}")
    assert response.status_code == 200
    return rows(await response.get_data(as_text=True))


async def test_the_page_shows_at_most_the_cap(app: Quart) -> None:
    assert await page_rows(app, "capped.a") == 3


async def test_the_page_starts_with_the_page_history(app: Quart) -> None:
    assert await page_rows(app, "short.a") == 4


async def test_the_panel_takes_its_head_swap_scroll_live_and_form_from_the_view(
    app: Quart,
) -> None:
    pages = {}
    for name in ("room", "plain"):
        response = await app.test_client().get(f"/channels/{name}.a")
        pages[name] = await response.get_data(as_text=True)
    room, plain = pages["room"], pages["plain"]
    assert 'hx-swap="afterbegin" aria-live="polite"' in room
    assert 'hx-swap="beforeend" aria-live="off"' in plain
    assert "scroll-bottom" in room and "scroll-top" in plain
    assert "quote-head" in room and "quote-head" not in plain
    assert 'class="chat-form"' in room and 'class="chat-form"' not in plain


async def post(app: Quart, channel: str, *, htmx: bool) -> Any:
    headers = {"HX-Request": "true"} if htmx else {}
    return await app.test_client().post(
        f"/api/channels/{channel}/events", form={"user": "ann", "text": "hi"}, headers=headers
    )


async def test_an_htmx_post_is_answered_with_the_views_form(app: Quart) -> None:
    with_form = await post(app, "room.a", htmx=True)
    assert with_form.status_code == 201 and with_form.mimetype == "text/html"
    assert 'class="chat-form"' in await with_form.get_data(as_text=True)
    without = await post(app, "plain.a", htmx=True)
    assert without.status_code == 201 and without.mimetype == "application/json"


async def test_posts_to_a_kind_with_a_form_spend_the_chat_budget(app: Quart) -> None:
    assert (await post(app, "room.a", htmx=False)).status_code == 201
    assert (await post(app, "room.a", htmx=False)).status_code == 429
    for _ in range(2):
        assert (await post(app, "plain.a", htmx=False)).status_code == 201


def test_a_template_dir_cannot_replace_a_built_in_template(tmp_path: Path) -> None:
    (tmp_path / "partials").mkdir()
    (tmp_path / "partials" / "_chat.html").write_text("hijacked")
    renderer = renderer_for(chat_like("shout", template_dir=tmp_path))
    assert 'class="message"' in renderer.event(says("shout", "hi"))
