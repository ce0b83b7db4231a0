"""Log lines: plain text or JSON, one per event, tokens never included."""

from __future__ import annotations

import json
import logging

import pytest

from app.serve.logs import configure_logging


@pytest.fixture(autouse=True)
def restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_time_level_logger_message(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json")
    logging.getLogger("pulseboard.stream").warning("slow client cut client=%s", "127.0.0.1")
    line = capsys.readouterr().err.strip()
    entry = json.loads(line)
    assert entry["level"] == "warning"
    assert entry["logger"] == "pulseboard.stream"
    assert entry["message"] == "slow client cut client=127.0.0.1"
    assert entry["time"].endswith("Z")


def test_text_is_the_default_and_watchfiles_is_quiet(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging()
    logging.getLogger("watchfiles.main").info("1 change detected")
    logging.getLogger("pulseboard").info("started")
    err = capsys.readouterr().err
    assert "change detected" not in err
    assert "INFO pulseboard started" in err
