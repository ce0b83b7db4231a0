"""A run of log rows of one channel in one write goes as one SSE message (issue 15, point 8)."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from app.events import Event, KindRegistry
from app.render import SCROLLBACK_CAP, Renderer, cap_from, create_environment
from app.web.streaming.format import HtmlFormat, JsonFormat
from tests.support.sse_parser import SSEParser

LOG_CAP = 1000
DELETE = 'hx-swap-oob="delete:'
TEMPLATE = '<template class="cap-end"></template>'


@pytest.fixture
def fmt() -> HtmlFormat:
    kinds = KindRegistry()
    return HtmlFormat(Renderer(create_environment(kinds), kinds), Counter())


def line(seq: int, channel: str = "log.app") -> Event:
    data = {"line": f"INFO row {seq:05d}", "file": "app.log", "level": "info"}
    return Event(f"e-{seq}", channel, "log", 1.0, data, seq=seq, offset=seq)


def tick(seq: int) -> Event:
    data = {"symbol": f"S{seq}", "price": 1.0 + seq, "change": 0.1}
    return Event(f"t-{seq}", "ticker", "ticker", 1.0, data, seq=seq, offset=seq)


def messages(body: bytes) -> list[tuple[str | None, str | None, str]]:
    return [(m.id, m.event, m.data) for m in SSEParser().feed(body)]


def test_k_rows_of_one_channel_go_as_one_message_with_one_delete(fmt: HtmlFormat) -> None:
    events = [line(n) for n in range(1, 4)]
    frames = [fmt.event(e) for e in events]
    ((at, channel, data),) = messages(fmt.join(frames, events))
    assert (at, channel) == ("e-3", "log.app")  # the run's last id: a resume starts after it
    assert data.count(DELETE) == 1 and data.count(TEMPLATE) == 1 and data.endswith(TEMPLATE)
    delete = re.search(r'delete:([^"]*)"', data).group(1)  # type: ignore[union-attr]
    assert [f"#line-e-{n}" for n in range(1, 4)] == delete.split(", ")[:3]  # each row's own
    assert f":nth-last-child(n+{LOG_CAP - 3 + 2}):not(.htmx-request + *)" in delete
    assert f"li.line.old:nth-child(n+{SCROLLBACK_CAP + 2})" in delete
    assert delete.endswith("#log-app-list > template")
    rows = re.findall(r'<li id="line-(e-\d+)"', data)
    assert rows == ["e-1", "e-2", "e-3"]
    assert data.index(delete) < data.index('<li id="line-e-1"')  # the delete goes first
    # each row as its own message would have read the same, one delete and template each
    for event, (_id, _ch, alone) in zip(events, messages(b"".join(frames)), strict=True):
        assert alone.count(DELETE) == 1 and f'<li id="line-{event.id}"' in alone
        assert f"nth-last-child(n+{LOG_CAP + 1})" in alone


def test_a_single_row_stays_its_shared_frame(fmt: HtmlFormat) -> None:
    event = line(7)
    frame = fmt.event(event)
    assert fmt.join([frame], [event]) is frame
    assert fmt.event(event) is frame, "cached on the event: one bytes object for every stream"


def test_runs_are_per_channel_and_other_kinds_stay_one_message_each(fmt: HtmlFormat) -> None:
    events = [line(1), line(2), line(3, "log.db"), tick(4), tick(5), line(6), line(7)]
    frames = [fmt.event(e) for e in events]
    got = messages(fmt.join(frames, events))
    assert [(m_id, m_channel) for m_id, m_channel, _data in got] == [
        ("e-2", "log.app"),  # 1-2
        ("e-3", "log.db"),
        ("t-4", "ticker"),
        ("t-5", "ticker"),
        ("e-7", "log.app"),  # 6-7
    ]
    assert got[0][2].count("<li ") == 2 and got[-1][2].count("<li ") == 2


def test_more_rows_than_the_cap_send_its_last_cap_and_delete_every_live_row(
    fmt: HtmlFormat,
) -> None:
    events = [line(n) for n in range(1, LOG_CAP + 6)]
    frames = [fmt.event(e) for e in events]
    ((at, _channel, data),) = messages(fmt.join(frames, events))
    assert at == f"e-{LOG_CAP + 5}"
    rows = re.findall(r'<li id="line-(e-\d+)"', data)
    assert rows == [f"e-{n}" for n in range(6, LOG_CAP + 6)]
    assert ":nth-last-child(n+2):" in data  # every live row; the template is the last child
    assert data.count("#line-e-") == LOG_CAP + 5  # a replayed row of any of them moves


def test_the_cap_arithmetic() -> None:
    """The list ends with the template: rows at 2..from-1 stay, cap - k of them."""
    for cap, k in [(1000, 1), (1000, 20), (1000, 999), (1000, 1000), (50, 70)]:
        start = cap_from(cap, k)
        kept = start - 2
        assert kept == max(cap - k, 0) and kept + min(k, cap) == cap


def test_json_streams_are_not_joined() -> None:
    events = [line(1), line(2)]
    fmt = JsonFormat()
    frames = [fmt.event(e) for e in events]
    assert fmt.join(frames, events) == b"".join(frames)
    assert len(messages(fmt.join(frames, events))) == 2
