"""pulseboard-weather: simulated weather readings, one event per city per interval.

An example third-party source: it brings its own kind (``weather``, a
latest-value channel keyed by city, shown as one card per city by the partial
it ships in ``templates/``) and registers through the ``pulseboard.sources``
entry point, with no change to Pulseboard itself.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from app.events import Kind, KindView, validate_channel
from app.sources.base import Pause, Publish, SourceType, pause_unless_stopped

Sky = Literal["clear", "cloudy", "rain", "snow"]


class WeatherPayload(msgspec.Struct, forbid_unknown_fields=True):
    """One reading, as subscribers receive it."""

    city: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    temp_c: float
    wind_kmh: Annotated[float, msgspec.Meta(ge=0)]
    sky: Sky


WEATHER_KIND = Kind(
    "weather",
    WeatherPayload,
    KindView(
        "partials/_weather.html",
        template_dir=Path(__file__).parent / "templates",
        cap=50,
        page_history=500,
        latest_value_key="city",
        spark_field="temp_c",
    ),
    external_publish=False,
    text=lambda data: f"{data['city']} {data['sky']} {data['temp_c']}°C",
)


class WeatherConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[[sources]] type = "weather"``; unknown keys are refused at start-up."""

    type: str = "weather"
    channel: str = "weather"
    cities: Annotated[list[str], msgspec.Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: ["Lisbon", "Oslo", "Nairobi"]
    )
    interval: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    seed: int | None = None

    def __post_init__(self) -> None:
        validate_channel(self.channel)


def reading(city: str, rng: random.Random) -> dict[str, Any]:
    """A plausible reading for ``city`` (pure: tests call it directly)."""
    sky: Sky = rng.choice(["clear", "cloudy", "rain", "snow"])
    temp_c = rng.uniform(-5, 5) if sky == "snow" else rng.uniform(5, 32)
    return {
        "city": city,
        "temp_c": round(temp_c, 1),
        "wind_kmh": round(rng.uniform(0, 60), 1),
        "sky": sky,
    }


class WeatherSource:
    """Publishes a reading for every city each ``interval`` until stopped."""

    def __init__(
        self,
        config: WeatherConfig,
        rng: random.Random | None = None,
        pause: Pause = pause_unless_stopped,
    ) -> None:
        self.config = config
        self.rng = rng or random.Random(config.seed)
        self.pause = pause

    async def run(self, publish: Publish, stop: asyncio.Event) -> None:
        """The whole contract: publish until ``stop`` is set, then return."""
        while not stop.is_set():
            for city in self.config.cities:
                await publish(self.config.channel, "weather", reading(city, self.rng))
            await self.pause(stop, self.config.interval)


def _channels(config: WeatherConfig) -> list[tuple[str, str]]:
    return [(config.channel, "weather")]


WEATHER = SourceType(
    name="weather",
    config=WeatherConfig,
    create=WeatherSource,
    channels=_channels,
    kinds=(WEATHER_KIND,),
    description="simulated weather readings per city (example plugin)",
)
