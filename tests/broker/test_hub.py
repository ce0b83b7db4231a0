"""The hub's channel rings: they grow with their content, then wrap keeping the newest."""

from __future__ import annotations

import tracemalloc

from app.broker.hub import ChannelLog, Hub
from app.events import Event, KindRegistry

CHANNELS = 2000
HISTORY = 1000


def event(channel: str, offset: int, seq: int) -> Event:
    return Event(f"e-{seq}", channel, "notify", 0.0, {"message": "m"}, seq, offset)


def test_a_channel_of_one_event_costs_one_slot_not_a_whole_history_ring() -> None:
    hub = Hub(KindRegistry(), history_size=HISTORY, max_lag=10)
    names = [f"a.c{n}" for n in range(CHANNELS)]
    events = [event(name, 0, seq) for seq, name in enumerate(names, start=1)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for name, one in zip(names, events, strict=True):
            hub.log(name, "notify").append(one)
        per_channel = (tracemalloc.get_traced_memory()[0] - before) / CHANNELS
    finally:
        tracemalloc.stop()
    # a preallocated ring alone was HISTORY pointers: 8,000 bytes a channel
    assert per_channel < 2048, per_channel


def test_the_ring_grows_then_wraps_keeping_the_newest_events() -> None:
    log = ChannelLog("a.b", "notify", capacity=3, latest_value_key=None)
    events = [event("a.b", offset, offset + 1) for offset in range(8)]
    for one in events[:2]:
        log.append(one)
    assert (log.first_offset, log.retained, log.dropped_seq) == (0, 2, 0)
    assert log.slice(0, 2) == events[:2]
    for one in events[2:]:
        log.append(one)
    assert (log.first_offset, log.retained, log.dropped_seq) == (5, 3, events[4].seq)
    assert log.slice(5, 8) == events[5:]
    assert log.slice(6, 8) == events[6:]
    assert [log.get(offset) for offset in (5, 6, 7)] == events[5:]
    assert log.offset_after(events[5].seq) == 6


def test_a_ring_started_part_way_grows_and_wraps_from_there() -> None:
    log = ChannelLog("a.b", "notify", capacity=3, latest_value_key=None)
    log.start_at(10, dropped_seq=9)
    events = [event("a.b", offset, offset + 1) for offset in range(10, 15)]
    log.append(events[0])
    assert (log.first_offset, log.retained, log.slice(10, 11)) == (10, 1, events[:1])
    for one in events[1:]:
        log.append(one)
    assert (log.first_offset, log.dropped_seq) == (12, events[1].seq)
    assert log.slice(12, 15) == events[2:]
    assert log.recent(2) == events[3:]
