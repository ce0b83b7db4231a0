"""The webhook outbox: the retry schedule, giving up by age, the stored form, a real listener."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.events import State
from app.outbox import Delivery, Outbox, next_attempt, retry_delay
from app.settings import SettingsError, settings_from_dict
from tests.support.waiting import until
from tests.support.webhook_receiver import WebhookReceiver, receiving


def delivery(**fields: Any) -> Delivery:
    values: dict[str, Any] = {
        "key": "ab12-7:Payments%20errors",
        "url": "http://127.0.0.1:9/hook",
        "format": "json",
        "body": {"line": "ERROR x"},
        "max_age_s": 3600.0,
        "first_at": 1000.0,
        "next_at": 1000.0,
    }
    return Delivery(**{**values, **fields})


def test_retries_double_from_one_second_to_five_minutes_and_the_jitter_takes_up_to_half() -> None:
    assert [retry_delay(n, jitter=0.999999) for n in range(1, 6)] == pytest.approx(
        [1, 2, 4, 8, 16], rel=1e-5
    )
    assert [retry_delay(n, jitter=0.0) for n in range(1, 6)] == [0.5, 1, 2, 4, 8]
    assert retry_delay(9, jitter=0.999999) == pytest.approx(256, rel=1e-5)
    assert retry_delay(10, jitter=0.999999) == pytest.approx(300, rel=1e-5)  # the cap
    assert retry_delay(1000, jitter=0.5) == 225  # no overflow, still the cap
    assert retry_delay(3, jitter=0.5, base_s=0.01) == pytest.approx(0.03)


def test_jittered_delays_of_deliveries_that_failed_together_spread_out() -> None:
    delays = {retry_delay(4, jitter=n / 10) for n in range(10)}
    assert len(delays) == 10
    assert min(delays) == 4 and max(delays) < 8


def test_a_delivery_is_given_up_when_its_next_attempt_would_pass_its_max_age() -> None:
    young = delivery(first_at=0.0, max_age_s=3600.0)
    assert next_attempt(young, now=100.0, delay=60.0) == 160.0
    assert next_attempt(young, now=3500.0, delay=100.0) == 3600.0  # exactly at the age: tried
    assert next_attempt(young, now=3500.0, delay=100.1) is None


def test_the_schedule_for_an_hour_tries_about_twenty_times_then_gives_up() -> None:
    entry = delivery(first_at=0.0, max_age_s=3600.0)
    now, attempts = 0.0, 0
    while True:
        attempts += 1
        at = next_attempt(entry, now, retry_delay(attempts, jitter=0.5))
        if at is None:
            break
        now = at
    assert 15 <= attempts <= 25
    assert now <= 3600


def test_a_delivery_is_stored_as_json_and_read_back() -> None:
    entry = delivery(attempts=3, next_at=1012.5)
    stored = json.loads(entry.to_json())
    assert set(stored) == {
        "url",
        "format",
        "body",
        "max_age_s",
        "first_at",
        "next_at",
        "attempts",
    }
    assert Delivery.from_json(entry.state_key, entry.to_json()) == entry
    assert entry.state_key == "outbox:ab12-7:Payments%20errors"


BAD_TIME = '{"url": "u", "format": "json", "body": {}, "max_age_s": "1h", "first_at": 0, '
BAD_TIME += '"next_at": 0, "attempts": 0}'


@pytest.mark.parametrize("text", ["{", "[]", '{"url": "x"}', '{"nope": 1}', BAD_TIME])
def test_an_unreadable_stored_entry_is_dropped_not_raised(
    text: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert Delivery.from_json("outbox:k", text) is None
    assert "dropping unreadable entry outbox:k" in caplog.text


@pytest.mark.parametrize("value", ["soon", "-1h", 0, "0s"])
def test_webhook_max_age_is_a_positive_duration_named_on_error(value: Any) -> None:
    rule = {"name": "r", "channel": "log.*", "pattern": "x", "notify": "ops.alerts"}
    with pytest.raises(SettingsError, match=r"alerts\[0\]\.webhook_max_age"):
        settings_from_dict({"alerts": [{**rule, "webhook_max_age": value}]})
    settings = settings_from_dict({"alerts": [{**rule, "webhook_max_age": "30m"}]})
    assert settings.alerts[0].webhook_max_age_s == 1800
    assert settings_from_dict({"alerts": [rule]}).alerts[0].webhook_max_age_s == 3600


# -- against a real listener ---------------------------------------------------


@pytest.fixture
async def listener() -> AsyncIterator[tuple[WebhookReceiver, str]]:
    async with receiving() as hook:
        yield hook, hook.url


class Store:
    """What the broker's save_state would keep."""

    def __init__(self) -> None:
        self.state: dict[str, str] = {}

    async def save(self, state: State) -> bool:
        for key, value in state.items():
            if value is None:
                self.state.pop(key, None)
            else:
                self.state[key] = value
        return True


async def test_a_failing_delivery_keeps_its_key_stores_its_progress_and_is_forgotten_when_done(
    listener: tuple[WebhookReceiver, str],
) -> None:
    hook, url = listener
    hook.statuses = [503, 429, 500]
    store = Store()
    async with httpx.AsyncClient() as client:
        outbox = Outbox(client, store.save, retry_base_s=0.01)
        entry = outbox.new("e-1:rule", url, "json", {"line": "ERROR"}, max_age_s=60)
        await store.save({entry.state_key: entry.to_json()})
        outbox.start(entry)
        await until(lambda: outbox.stats.sent == 1, "the delivery made")
        await outbox.drain(10)
    assert hook.keys == ["e-1:rule"] * 4
    assert store.state == {}
    assert (outbox.stats.pending, outbox.stats.given_up) == (0, 0)


async def test_a_refused_body_is_given_up_at_once_with_a_warning(
    listener: tuple[WebhookReceiver, str], caplog: pytest.LogCaptureFixture
) -> None:
    hook, url = listener
    hook.statuses = [422]
    store = Store()
    async with httpx.AsyncClient() as client:
        outbox = Outbox(client, store.save, retry_base_s=0.01)
        entry = outbox.new("e-2:rule", url, "json", {}, max_age_s=60)
        await store.save({entry.state_key: entry.to_json()})
        outbox.start(entry)
        await until(lambda: outbox.stats.given_up == 1, "the delivery given up")
        await outbox.drain(10)
    assert hook.keys == ["e-2:rule"]
    assert store.state == {}
    assert "given up after 1 attempts (not retried): HTTP 422; Idempotency-Key e-2:rule" in (
        caplog.text
    )


async def test_a_delivery_past_its_age_is_given_up(caplog: pytest.LogCaptureFixture) -> None:
    store = Store()
    async with httpx.AsyncClient() as client:
        outbox = Outbox(client, store.save, retry_base_s=0.01)
        dead = outbox.new("e-3:rule", "http://127.0.0.1:9/hook", "json", {}, max_age_s=0.05)
        outbox.start(dead)
        await until(lambda: outbox.stats.given_up == 1, "the delivery given up")
        await outbox.drain(10)
    assert "older than 0.05s" in caplog.text
    assert outbox.stats.pending == 0


async def test_stored_deliveries_resume_with_their_keys_and_attempts(
    listener: tuple[WebhookReceiver, str],
) -> None:
    hook, url = listener
    store = Store()
    pending = delivery(key="e-4:rule", url=url, attempts=5, first_at=0.0, max_age_s=1e12)
    store.state = {pending.state_key: pending.to_json(), "outbox:broken": "{"}
    async with httpx.AsyncClient() as client:
        outbox = Outbox(client, store.save, retry_base_s=0.01)
        assert await outbox.resume(dict(store.state)) == 1
        await until(lambda: outbox.stats.sent == 1, "the resumed delivery made")
        await outbox.drain(10)
    assert hook.keys == ["e-4:rule"]
    assert store.state == {}
