"""The per-connection jitter of ``retry:`` and the retry told at shutdown (pure functions)."""

from __future__ import annotations

import random

from app.web.streaming.format import stream_format
from app.web.streaming.retry import SHUTDOWN_RETRY_MS, jittered_retry_ms, shutdown_retry_ms


def test_jittered_retry_spans_base_to_twice_base() -> None:
    assert jittered_retry_ms(2000, 0.0) == 2000
    assert jittered_retry_ms(2000, 0.5) == 3000
    assert 3990 < jittered_retry_ms(2000, 0.999_999_9) < 4000
    assert jittered_retry_ms(0, 0.7) == 0


def test_jittered_retry_clamps_a_draw_outside_the_unit_range() -> None:
    assert jittered_retry_ms(1000, -1.0) == 1000
    assert jittered_retry_ms(1000, 1.0) < 2000


def test_shutdown_retry_spans_its_window() -> None:
    low, high = SHUTDOWN_RETRY_MS
    assert shutdown_retry_ms(0.0) == low
    assert shutdown_retry_ms(0.999_999_9) < high
    assert shutdown_retry_ms(0.5, (100, 300)) == 200


def test_drawn_retries_stay_in_range_and_are_spread_not_constant() -> None:
    rng = random.Random(18)
    opening = [jittered_retry_ms(2000, rng.random()) for _ in range(1000)]
    closing = [shutdown_retry_ms(rng.random()) for _ in range(1000)]
    assert all(2000 <= value < 4000 for value in opening)
    assert all(SHUTDOWN_RETRY_MS[0] <= value < SHUTDOWN_RETRY_MS[1] for value in closing)
    for values, (low, high) in ((opening, (2000, 4000)), (closing, SHUTDOWN_RETRY_MS)):
        quarter = (high - low) / 4
        counts = [0, 0, 0, 0]
        for value in values:
            counts[int((value - low) // quarter)] += 1
        assert min(counts) > 150, counts  # uniform: about 250 in each quarter
        assert len(set(values)) > 500


def test_sse_formats_tell_the_retry_and_ndjson_has_none() -> None:
    json_format = stream_format("json", None, None, None)  # type: ignore[arg-type]
    ndjson_format = stream_format("ndjson", None, None, None)  # type: ignore[arg-type]
    assert json_format.retry(3210) == b"retry: 3210\n"
    assert ndjson_format.retry(3210) == b""
