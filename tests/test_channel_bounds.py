"""Channel bounds in the runtime: metric labels, and the channels sources publish to."""

from __future__ import annotations

from collections import Counter

import pytest

from app.broker.base import ChannelLimit
from app.serve.metrics import OTHER_CHANNEL, fold_other
from app.serve.runtime import build_runtime, sweep_interval_s
from app.settings import settings_from_dict


def test_fold_other_moves_undeclared_counts_into_other_and_keeps_totals() -> None:
    counts = Counter({"ops.deploys": 3, "a.x": 2, "a.y": 1, OTHER_CHANNEL: 10})
    fold_other(counts, {"ops.deploys"})
    assert counts == Counter({"ops.deploys": 3, OTHER_CHANNEL: 13})
    fold_other(counts, {"ops.deploys"})
    assert counts == Counter({"ops.deploys": 3, OTHER_CHANNEL: 13})


async def test_a_channel_a_source_publishes_to_is_declared_beyond_the_limit() -> None:
    settings = settings_from_dict(
        {"limits": {"max_channels": 1, "channel_idle_ttl": "1h"}, "broker": {"url": "memory://"}}
    )
    runtime = build_runtime(settings, run_sources=False)
    note = {"message": "m", "level": "info"}
    await runtime.publish_valid("a.x", "notify", note)
    with pytest.raises(ChannelLimit):
        await runtime.publish_valid("a.y", "notify", note)
    line = {"line": "new file", "file": "new.log", "level": None}
    await runtime.publish("log.new", "log", line)
    assert runtime.metric_channel("log.new") == "log.new"
    assert runtime.metric_channel("a.x") == OTHER_CHANNEL
    assert await runtime.broker.sweep(0.0) == []
    assert await runtime.broker.sweep(7200.0) == ["a.x"]
    assert await runtime.broker.kind_of("log.new") == "log"


def test_the_sweep_runs_every_tenth_of_the_ttl_between_a_second_and_a_minute() -> None:
    assert sweep_interval_s(7 * 86400) == 60
    assert sweep_interval_s(300) == 30
    assert sweep_interval_s(2) == 1
