"""ticker: simulated stock quotes, a geometric Brownian motion per symbol.

Deliberate oddities:
- ``volatility`` and ``drift`` are per quote, not annualised: 0.01 means a
  typical move of about 1 % between two quotes of a symbol, so the demo board
  visibly moves.
- ``change`` and ``change_pct`` are measured from the symbol's opening price
  (its start price), as on a market board; ``volume`` is the running total.
- The symbols' quotes are spread evenly over ``interval``, so the board moves
  all the time instead of jumping once per interval.
"""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec

from app.events import validate_channel
from app.sources.base import Pause, Publish, SourceType, pause_unless_stopped

DEFAULT_SYMBOLS = ("ACME", "INITECH", "GLOBEX", "UMBRELLA")


class TickerConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[[sources]] type = "ticker"``."""

    type: str = "ticker"
    channel: str = "ticker"
    symbols: Annotated[
        list[Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9.^-]{1,16}$")]],
        msgspec.Meta(min_length=1, max_length=100),
    ] = msgspec.field(default_factory=lambda: list(DEFAULT_SYMBOLS))
    interval: Annotated[float, msgspec.Meta(ge=0.01, le=3600)] = 1.0
    volatility: Annotated[float, msgspec.Meta(ge=0, le=0.5)] = 0.01
    drift: Annotated[float, msgspec.Meta(ge=-0.1, le=0.1)] = 0.0
    seed: int | None = None
    start_prices: dict[str, Annotated[float, msgspec.Meta(gt=0)]] = msgspec.field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        validate_channel(self.channel)
        unknown = sorted(set(self.start_prices) - set(self.symbols))
        if unknown:
            raise ValueError(f"start_prices: {', '.join(unknown)} not among symbols")
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError("symbols: listed twice")


@dataclass
class _Quote:
    open: float
    price: float
    volume: int


class TickerModel:
    """The pure price walk: the same ``rng`` seed gives the same series of quotes."""

    def __init__(self, config: TickerConfig, rng: random.Random) -> None:
        self.config = config
        self.rng = rng
        self._quotes = {symbol: self._opening(symbol) for symbol in config.symbols}

    def quote(self, symbol: str) -> dict[str, Any]:
        """Advance ``symbol`` by one step and return its ticker payload."""
        state = self._quotes[symbol]
        sigma, mu = self.config.volatility, self.config.drift
        state.price *= math.exp(mu - sigma * sigma / 2 + sigma * self.rng.gauss(0.0, 1.0))
        state.volume += self.rng.randint(1, 50) * 100
        change = state.price - state.open
        return {
            "symbol": symbol,
            "price": round(state.price, 2),
            "change": round(change, 2),
            "change_pct": round(100 * change / state.open, 2),
            "volume": state.volume,
        }

    def _opening(self, symbol: str) -> _Quote:
        price = self.config.start_prices.get(symbol) or round(self.rng.uniform(20, 500), 2)
        return _Quote(open=price, price=price, volume=0)


class TickerSource:
    """Publishes one quote per symbol per ``interval``, round-robin, until stopped."""

    def __init__(
        self,
        config: TickerConfig,
        rng: random.Random | None = None,
        pause: Pause = pause_unless_stopped,
    ) -> None:
        self.config = config
        self.model = TickerModel(config, rng or random.Random(config.seed))
        self.pause = pause

    async def run(self, publish: Publish, stop: asyncio.Event) -> None:
        """Quote the symbols in turn, each ``interval / len(symbols)`` after the last."""
        step_s = self.config.interval / len(self.config.symbols)
        while not stop.is_set():
            for symbol in self.config.symbols:
                await publish(self.config.channel, "ticker", self.model.quote(symbol))
                await self.pause(stop, step_s)
                if stop.is_set():
                    return


def _channels(config: TickerConfig) -> list[tuple[str, str]]:
    return [(config.channel, "ticker")]


TICKER = SourceType(
    name="ticker",
    config=TickerConfig,
    create=TickerSource,
    channels=_channels,
    description="simulated stock quotes (geometric Brownian motion per symbol)",
)
