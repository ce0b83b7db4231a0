"""The safety net: a bug in a handler is a JSON 500, logged once, with no traceback sent."""

from __future__ import annotations

import logging

import pytest

from app.serve.factory import create_app
from app.settings import settings_from_dict


async def test_an_unexpected_error_is_a_json_500_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app(settings_from_dict({}), run_sources=False)

    async def broken() -> str:
        raise KeyError("a bug")

    app.add_url_rule("/broken", "broken", broken)
    async with app.test_app() as test_app:
        with caplog.at_level(logging.ERROR):
            answer = await test_app.test_client().get("/broken", headers={"Host": "localhost"})
    assert answer.status_code == 500
    assert await answer.get_json() == {"error": "internal error", "detail": None}
    body = await answer.get_data(as_text=True)
    assert "Traceback" not in body
    assert "a bug" not in body
    records = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(records) == 1
    assert "KeyError: GET /broken" in records[0].getMessage()
    assert records[0].exc_info is not None
