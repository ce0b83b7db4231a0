"""The plugin's own tests: run with `pytest` once Pulseboard and this package are installed."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from pulseboard_weather import WEATHER, WEATHER_KIND, WeatherSource, reading

from app.sources.base import SourceConfigError, configure_sources, load_source_types


def test_readings_match_the_schema() -> None:
    rng = random.Random(1)
    for _ in range(100):
        data = reading("Oslo", rng)
        assert WEATHER_KIND.validate(data) == data


def test_the_type_is_found_through_the_entry_point() -> None:
    assert load_source_types()["weather"] is WEATHER


def test_a_misspelt_key_is_refused_by_name() -> None:
    with pytest.raises(SourceConfigError, match=r"sources\[0\]\.citys"):
        configure_sources([{"type": "weather", "citys": ["Oslo"]}], {"weather": WEATHER})


async def test_run_publishes_each_city_and_stops() -> None:
    [source] = configure_sources(
        [{"type": "weather", "cities": ["Oslo", "Lima"]}], {"weather": WEATHER}
    )
    stop = asyncio.Event()
    seen: list[str] = []

    async def publish(channel: str, kind: str, data: dict[str, Any]) -> Any:
        seen.append(data["city"])

    async def pause(stop_: asyncio.Event, delay_s: float) -> None:
        stop.set()

    await WeatherSource(source.config, random.Random(2), pause).run(publish, stop)
    assert seen == ["Oslo", "Lima"]
