"""The ticker: a deterministic price walk, a prompt stop, and conflation for lagging readers."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import msgspec
import pytest

from app.broker.base import Start
from app.broker.memory import MemoryBroker
from app.events import Event, KindRegistry
from app.sources.base import SourceConfigError, configure_sources
from app.sources.ticker import TICKER, TickerConfig, TickerModel, TickerSource

SYMBOLS = ["ACME", "INITECH", "GLOBEX", "UMBRELLA"]


def config(**keys: Any) -> TickerConfig:
    return msgspec.convert({"type": "ticker", "symbols": SYMBOLS, **keys}, TickerConfig)


def series(seed: int, steps: int = 50) -> list[dict[str, Any]]:
    model = TickerModel(config(seed=seed), random.Random(seed))
    return [model.quote(symbol) for _ in range(steps) for symbol in SYMBOLS]


def test_same_seed_gives_the_same_series() -> None:
    assert series(42) == series(42)
    assert series(42) != series(43)


def test_quotes_are_valid_ticker_payloads_that_move() -> None:
    kind = KindRegistry().get("ticker")
    quotes = series(7, steps=100)
    for quote in quotes:
        assert kind.validate(quote) == quote
        assert quote["price"] > 0
        assert isinstance(quote["volume"], int)
    acme = [q["price"] for q in quotes if q["symbol"] == "ACME"]
    assert len(set(acme)) > 50


def test_change_is_measured_from_the_start_price() -> None:
    model = TickerModel(config(start_prices={"ACME": 100.0}, volatility=0.05), random.Random(1))
    quote = model.quote("ACME")
    assert quote["change"] == pytest.approx(quote["price"] - 100.0, abs=0.011)
    assert quote["change_pct"] == pytest.approx(quote["change"], abs=0.011)


def test_zero_volatility_and_drift_keep_the_price() -> None:
    model = TickerModel(config(start_prices={"ACME": 12.5}, volatility=0.0), random.Random(1))
    assert {model.quote("ACME")["price"] for _ in range(10)} == {12.5}


@pytest.mark.parametrize(
    ("keys", "named"),
    [
        ({"start_prices": {"NOPE": 1.0}}, "start_prices"),
        ({"volatility": -1}, "volatility"),
        ({"interval": 0}, "interval"),
        ({"symbols": []}, "symbols"),
        ({"channel": "Ticker"}, "channel"),
        ({"speed": 2}, "speed"),
    ],
)
def test_bad_config_is_refused_naming_the_key(keys: dict[str, Any], named: str) -> None:
    entry = {"type": "ticker", "symbols": SYMBOLS, **keys}
    with pytest.raises(SourceConfigError, match=named):
        configure_sources([entry], {"ticker": TICKER})


def test_channels_declares_the_ticker_channel() -> None:
    assert TICKER.channels(config(channel="markets")) == [("markets", "ticker")]


async def test_run_publishes_every_symbol_in_turn_and_stops() -> None:
    published: list[tuple[str, str, dict[str, Any]]] = []
    pauses: list[float] = []
    stop = asyncio.Event()

    async def publish(channel: str, kind: str, data: dict[str, Any]) -> Event:
        published.append((channel, kind, data))
        if len(published) == 10:
            stop.set()
        return None  # type: ignore[return-value]

    async def pause(stop_: asyncio.Event, delay_s: float) -> None:
        pauses.append(delay_s)

    source = TickerSource(config(seed=3, interval=2.0), random.Random(3), pause)
    await asyncio.wait_for(source.run(publish, stop), timeout=10)

    assert [data["symbol"] for _, _, data in published] == (SYMBOLS * 3)[:10]
    assert {(channel, kind) for channel, kind, _ in published} == {("ticker", "ticker")}
    assert set(pauses) == {0.5}
    model = TickerModel(config(seed=3), random.Random(3))
    assert [data for _, _, data in published] == [model.quote(s) for s in (SYMBOLS * 3)[:10]]


async def test_real_pause_ends_promptly_on_stop() -> None:
    stop, quoted = asyncio.Event(), asyncio.Event()

    async def publish(channel: str, kind: str, data: dict[str, Any]) -> Event:
        quoted.set()
        return None  # type: ignore[return-value]

    task = asyncio.create_task(TickerSource(config(interval=3600)).run(publish, stop))
    await asyncio.wait_for(quoted.wait(), timeout=10)
    stop.set()
    await asyncio.wait_for(task, timeout=10)


async def test_lagging_subscriber_gets_the_newest_quote_per_symbol_and_is_not_cut() -> None:
    broker = MemoryBroker(KindRegistry(), history_size=50, max_lag=10)
    model = TickerModel(config(seed=9), random.Random(9))
    async with broker.subscribe(["ticker"], Start()) as subscription:
        newest: dict[str, dict[str, Any]] = {}
        for _ in range(100):  # 400 quotes: far past max_lag and the 50-event ring
            for symbol in SYMBOLS:
                newest[symbol] = model.quote(symbol)
                await broker.publish("ticker", "ticker", newest[symbol])
        assert subscription.wake.is_set()
        events = subscription.take()
        assert subscription.closed_reason is None
        live = await broker.publish("ticker", "ticker", model.quote("ACME"))
        assert subscription.take() == [live]
    assert {event.data["symbol"]: event.data for event in events} == newest
    assert len(events) == len(SYMBOLS)
    assert [event.seq for event in events] == sorted(event.seq for event in events)


async def test_a_fresh_connect_gets_the_latest_quote_per_symbol() -> None:
    broker = MemoryBroker(KindRegistry(), history_size=50, max_lag=10)
    model = TickerModel(config(seed=4), random.Random(4))
    newest: dict[str, dict[str, Any]] = {}
    for _ in range(30):
        for symbol in SYMBOLS:
            newest[symbol] = model.quote(symbol)
            await broker.publish("ticker", "ticker", newest[symbol])
    async with broker.subscribe(["ticker"], Start(snapshot=True)) as subscription:
        snapshot = subscription.snapshots["ticker"]
    assert {event.data["symbol"]: event.data for event in snapshot} == newest
