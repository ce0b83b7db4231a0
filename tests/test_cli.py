"""The pulseboard command as a user types it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.support.cli import pulseboard
from tests.support.server import ROOT, answers, free_port
from tests.support.waiting import wait_until


def test_check_config_accepts_the_shipped_config() -> None:
    done = pulseboard("check-config", "config/default.toml")
    assert done.returncode == 0, done.stderr
    assert "ok" in done.stdout


def test_check_config_names_the_bad_key_and_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[server]\nheartbeat = 0\n")
    done = pulseboard("check-config", str(config))
    assert done.returncode == 2
    assert "server.heartbeat" in done.stderr
    assert "Traceback" not in done.stderr


def test_check_config_names_a_bad_source_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[[sources]]\ntype = "ticker"\nchannel = "ticker"\nsymbolz = ["A"]\n')
    done = pulseboard("check-config", str(config))
    assert done.returncode == 2
    assert "sources[0]" in done.stderr
    assert "symbolz" in done.stderr


def test_workers_on_the_memory_broker_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "memory.toml"
    config.write_text('[broker]\nurl = "memory://"\n')
    done = pulseboard("serve", "--config", str(config), "--workers", "2")
    assert done.returncode != 0
    assert "--workers" in done.stderr
    assert "memory" in done.stderr


def test_environment_overrides_reach_serve(tmp_path: Path) -> None:
    config = tmp_path / "plain.toml"
    config.write_text('[server]\nbind = "127.0.0.1:1"\n')
    port = free_port()
    env = {**os.environ, "PULSEBOARD_SERVER__BIND": f"127.0.0.1:{port}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--config", str(config)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: answers(f"http://127.0.0.1:{port}"), "answering on the env port")
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_sources_list_shows_the_builtins() -> None:
    done = pulseboard("sources", "list")
    assert done.returncode == 0, done.stderr
    for name in ("chat", "logtail", "notify", "ticker", "demo-log"):
        assert name in done.stdout


def test_check_config_names_a_bad_alert_pattern(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(
        '[[alerts]]\nchannel = "log.*"\npattern = "(unclosed"\nnotify = "ops.alerts"\n'
    )
    done = pulseboard("check-config", str(config))
    assert done.returncode == 2
    assert "alerts[0].pattern" in done.stderr


def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "taken.toml"
        config.write_text(f'[server]\nbind = "127.0.0.1:{port}"\n')
        done = pulseboard("serve", "--config", str(config))
    assert done.returncode == 2
    assert f"server.bind: cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr
