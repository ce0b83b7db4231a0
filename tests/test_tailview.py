"""``pulseboard tail``'s settings and address: no config file, one log channel for every path."""

from __future__ import annotations

import pytest

from app.cli.tailview import (
    TAIL_CHANNEL,
    bound_address,
    listen,
    tail_settings,
    unmatched,
    viewer_url,
)
from app.settings import SettingsError
from tests.support.cli import pulseboard


def test_every_path_is_a_logtail_on_one_channel_of_a_memory_broker() -> None:
    settings = tail_settings(["a.log", "/var/log/*.log"], "127.0.0.1:9001", 50, 2000)
    assert settings.broker.url == "memory://" and settings.broker.history == 2000
    assert [(s["channel"], s["lines"]) for s in settings.sources] == [(TAIL_CHANNEL, 50)] * 2
    assert settings.sources[0]["path"].endswith("/a.log")
    assert settings.sources[1]["path"] == "/var/log/*.log"
    assert [(c.name, c.kind, c.title) for c in settings.channels] == [
        (TAIL_CHANNEL, "log", "a.log, *.log")
    ]


def test_port_zero_binds_a_free_port_and_the_url_names_it() -> None:
    with listen("127.0.0.1:0") as sock:
        port = sock.getsockname()[1]
        assert port > 0
        assert bound_address(sock) == f"127.0.0.1:{port}"
        assert viewer_url(sock) == f"http://127.0.0.1:{port}/channels/log.tail"


@pytest.mark.parametrize("bind", ["nowhere", "127.0.0.1:http", ":80"])
def test_a_bad_bind_is_refused_in_words(bind: str) -> None:
    with pytest.raises(SettingsError, match="--bind"):
        listen(bind)


def test_paths_matching_nothing_are_named() -> None:
    assert unmatched(["/no/such/file.log", "/etc/hostname"]) == ["/no/such/file.log"]


def test_the_command_refuses_a_bad_bind_with_status_2() -> None:
    result = pulseboard("tail", "/no/such.log", "--bind", "nowhere")
    assert result.returncode == 2
    assert "pulseboard: --bind: expected HOST:PORT" in result.stderr
