"""The pulseboard command as a user types it."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cli import RunningCommand, pulseboard
from tests.support.proxy import CuttableProxy
from tests.support.server import ROOT, ServerProcess, answers, free_port
from tests.support.waiting import wait_until

INTERRUPTED = 130


def test_check_config_accepts_the_shipped_config() -> None:
    done = pulseboard("check-config", "config/default.toml")
    assert done.returncode == 0, done.stderr
    assert "ok" in done.stdout
    assert done.stderr == ""  # var/log/*.log is written by the demo-log source: no warning


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
        '[[alerts]]\nname = "x"\nchannel = "log.*"\npattern = "(unclosed"\nnotify = "ops.alerts"\n'
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


# -- publish, subscribe and --version against a real server ------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    config = {
        "server": {"heartbeat": 0.5},
        "broker": {"url": "memory://"},
        "channels": [
            {"name": name, "kind": "notify"}
            for name in (
                "ops.flags",
                "pretty.notes",
                "ops.json",
                "ops.resume",
                "ops.quit",
                "ops.head",
            )
        ]
        + [{"name": "chat.room", "kind": "chat"}],
    }
    server = ServerProcess(tmp_path_factory.mktemp("cli"), config).start()
    yield server
    server.stop()
    assert "Traceback" not in server.log()


def history(server: ServerProcess, channel: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.url}/api/channels/{channel}/events", timeout=10)
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def subscribers(url: str, channel: str) -> int:
    listing = httpx.get(f"{url}/api/channels", timeout=10).json()["channels"]
    return sum(info["subscribers"] for info in listing if info["name"] == channel)


def publish(url: str, channel: str, message: str) -> str:
    response = httpx.post(f"{url}/api/channels/{channel}/events", json={"message": message})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_version_is_the_package_version() -> None:
    done = pulseboard("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"pulseboard, version {version('pulseboard')}"


@pytest.mark.parametrize("command", ["publish", "subscribe"])
def test_help_names_the_url_and_token_variables(command: str) -> None:
    done = pulseboard(command, "--help")
    assert "PULSEBOARD_URL" in done.stdout and "PULSEBOARD_TOKEN" in done.stdout


def test_publish_flags_round_trip_through_the_history_api(server: ServerProcess) -> None:
    done = pulseboard(
        *("publish", "ops.flags", "disk 91% full", "--title", "db-1", "--level", "warn"),
        *("--priority", "high", "--tags", "disk,db-1", "--tags", "prod", "--key", "disk-db-1"),
        *("--link", "https://example.org/db-1"),
        env={"PULSEBOARD_URL": server.url},
    )
    assert done.returncode == 0, done.stderr
    [event] = history(server, "ops.flags")
    assert event["id"] == done.stdout.strip()
    assert event["data"] == {
        "message": "disk 91% full",
        "title": "db-1",
        "level": "warning",
        "priority": 4,
        "tags": ["disk", "db-1", "prod"],
        "key": "disk-db-1",
        "link": "https://example.org/db-1",
    }


def test_publish_priority_alone_sets_the_level(server: ServerProcess) -> None:
    done = pulseboard("publish", "ops.flags", "site down", "--priority", "5", "--url", server.url)
    assert done.returncode == 0, done.stderr
    assert history(server, "ops.flags")[-1]["data"] == {
        "message": "site down",
        "level": "critical",
        "priority": 5,
    }


def test_publish_refusal_is_one_line_naming_the_field(server: ServerProcess) -> None:
    done = pulseboard("publish", "ops.flags", "x", "--priority", "9", "--url", server.url)
    assert done.returncode == 2
    assert done.stderr.startswith("pulseboard: 400: priority")
    assert done.stderr.count("\n") == 1


def test_publish_refuses_notification_flags_on_a_chat_message() -> None:
    done = pulseboard("publish", "chat.room", "hi", "--user", "ann", "--tags", "x")
    assert done.returncode == 2
    assert done.stderr == "pulseboard: --user posts a chat message, which has no --tags\n"


def test_subscribe_prints_a_pretty_line_per_event(server: ServerProcess) -> None:
    pulseboard(
        "publish",
        "pretty.notes",
        "deploy 43 done",
        "--title",
        "ci",
        "--tags",
        "web",
        "--url",
        server.url,
    )
    pulseboard("publish", "chat.room", "hello", "--user", "ann", "--url", server.url)
    follower = RunningCommand(
        "subscribe", "pretty.*", "chat.room", "--history", "5", env={"PULSEBOARD_URL": server.url}
    )
    try:
        lines = follower.wait_for_lines(2)
    finally:
        assert follower.stop() == INTERRUPTED
    assert sorted(line.split(" ", 1)[1] for line in lines) == [
        "chat.room ann: hello",
        "pretty.notes [info] ci: deploy 43 done #web",
    ]
    assert re.fullmatch(r"\d\d:\d\d:\d\d", lines[0].split(" ")[0])


def test_subscribe_json_prints_the_events_as_ndjson(server: ServerProcess) -> None:
    follower = RunningCommand("subscribe", "ops.json", "--json", "--url", server.url)
    try:
        wait_until(lambda: subscribers(server.url, "ops.json") == 1, "subscribed")
        ids = [publish(server.url, "ops.json", f"n{i}") for i in range(3)]
        lines = follower.wait_for_lines(3)
    finally:
        assert follower.stop() == INTERRUPTED
    events = [json.loads(line) for line in lines]
    assert [e["id"] for e in events] == ids
    assert events[0] == history(server, "ops.json")[0]
    assert "Traceback" not in "\n".join(follower.stderr)


def test_subscribe_resumes_after_a_dropped_connection_without_loss_or_duplicate(
    server: ServerProcess,
) -> None:
    proxy = CuttableProxy(server.port)
    follower = RunningCommand("subscribe", "ops.resume", "--json", "--url", proxy.url)
    try:
        wait_until(lambda: subscribers(server.url, "ops.resume") == 1, "subscribed")
        ids = [publish(server.url, "ops.resume", f"before {i}") for i in range(2)]
        follower.wait_for_lines(2)
        proxy.cut()
        wait_until(lambda: subscribers(server.url, "ops.resume") == 0, "the stream dropped")
        ids += [publish(server.url, "ops.resume", f"while cut {i}") for i in range(3)]
        wait_until(lambda: proxy.accepted >= 2, "a reconnection attempt")
        proxy.resume()
        wait_until(lambda: subscribers(server.url, "ops.resume") == 1, "resubscribed")
        ids += [publish(server.url, "ops.resume", "after")]
        lines = follower.wait_for_lines(6)
    finally:
        code = follower.stop()
        proxy.close()
    assert [json.loads(line)["id"] for line in lines] == ids
    assert len(follower.stdout) == 6
    assert code == INTERRUPTED
    assert any("reconnecting" in line for line in follower.stderr)
    assert not any("missed" in line for line in follower.stderr)


def test_subscribe_follows_a_restarted_server_with_no_duplicate(tmp_path: Path) -> None:
    config = {"broker": {"url": "memory://"}, "channels": [{"name": "ops.r", "kind": "notify"}]}
    first = ServerProcess(tmp_path, config).start()
    follower = RunningCommand("subscribe", "ops.r", "--json", "--url", first.url)
    second = ServerProcess(tmp_path, config, port=first.port)
    try:
        wait_until(lambda: subscribers(first.url, "ops.r") == 1, "subscribed")
        ids = [publish(first.url, "ops.r", f"first {i}") for i in range(2)]
        follower.wait_for_lines(2)
        assert first.stop() == 0
        second.start()
        ids += [publish(second.url, "ops.r", f"second {i}") for i in range(2)]
        wait_until(lambda: subscribers(second.url, "ops.r") == 1, "resubscribed", 30)
        ids += [publish(second.url, "ops.r", "live")]
        lines = follower.wait_for_lines(5, 30)
    finally:
        code = follower.stop()
        for server in (first, second):
            if server.process is not None:
                server.stop()
    assert [json.loads(line)["id"] for line in lines] == ids
    assert len(follower.stdout) == 5
    assert code == INTERRUPTED
    # memory:// forgets on restart: the client is told, instead of silently missing events
    assert any("missed events on ops.r" in line for line in follower.stderr)


def test_ctrl_c_ends_subscribe_quietly(server: ServerProcess) -> None:
    follower = RunningCommand("subscribe", "ops.quit", "--url", server.url)
    wait_until(lambda: subscribers(server.url, "ops.quit") == 1, "subscribed")
    assert follower.stop(signal.SIGINT) == INTERRUPTED
    assert follower.stderr == []


def test_subscribe_piped_into_head_ends_quietly(server: ServerProcess) -> None:
    publish(server.url, "ops.head", "first")
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "subscribe", "ops.head", "--history", "1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PULSEBOARD_URL": server.url},
    )
    assert process.stdout is not None and process.stderr is not None
    assert b"first" in process.stdout.readline()
    process.stdout.close()  # what `| head -1` does after its line
    publish(server.url, "ops.head", "second")
    try:
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert b"Traceback" not in process.stderr.read()
        process.stderr.close()


def test_subscribe_to_no_server_is_one_line_and_exit_2() -> None:
    done = pulseboard("subscribe", "ops.x", "--url", f"http://127.0.0.1:{free_port()}")
    assert done.returncode == 2
    assert done.stderr.startswith("pulseboard: cannot reach http://127.0.0.1:")
    assert done.stderr.count("\n") == 1


def test_subscribe_refusals_are_one_line_and_exit_2(tmp_path: Path) -> None:
    config = {"auth": {"read_tokens": ["reader-token-1"], "publish_tokens": ["pub-token-1"]}}
    server = ServerProcess(tmp_path, config).start()
    try:
        anonymous = pulseboard("subscribe", "ops.x", "--url", server.url)
        wrong = pulseboard(
            "subscribe",
            "ops.x",
            env={"PULSEBOARD_URL": server.url, "PULSEBOARD_TOKEN": "not-a-token"},
        )
        bad_name = pulseboard("subscribe", "Ops", "--url", server.url)
    finally:
        server.stop()
    assert (anonymous.returncode, wrong.returncode, bad_name.returncode) == (2, 2, 2)
    assert anonymous.stderr == "pulseboard: 401: a read token is required\n"
    assert wrong.stderr == "pulseboard: 401: unknown token\n"
    assert bad_name.stderr.startswith("pulseboard: channel: 'Ops' is not a channel name")


# -- check-config: what would fail at run time fails now ---------------------


def check_config(tmp_path: Path, toml: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "pulseboard.toml"
    config.write_text(toml)
    return pulseboard("check-config", str(config))


ALERT = '[[alerts]]\nname = "Errors"\nchannel = "log.*"\npattern = "ERROR"\n'


def test_check_config_refuses_an_alert_to_a_declared_log_channel(tmp_path: Path) -> None:
    done = check_config(
        tmp_path, f'[[channels]]\nname = "log.web"\nkind = "log"\n{ALERT}notify = "log.web"\n'
    )
    assert done.returncode == 2
    assert done.stderr.startswith("pulseboard: alerts[0].notify: 'log.web' is a log channel")


def test_check_config_refuses_an_alert_to_a_sources_channel(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    sources = f'[[sources]]\ntype = "logtail"\npath = "{log}"\n'
    done = check_config(tmp_path, f'{sources}{ALERT}notify = "log.app"\n')
    assert done.returncode == 2
    assert "alerts[0].notify: 'log.app' is a log channel" in done.stderr


@pytest.mark.parametrize("url", ["ftp://example.org/hook", "http://", "https://?x=1", "hooks/x"])
def test_check_config_refuses_a_webhook_that_is_not_an_http_url(tmp_path: Path, url: str) -> None:
    done = check_config(tmp_path, f'{ALERT}notify = "ops.alerts"\nwebhook = "{url}"\n')
    assert done.returncode == 2
    assert "alerts[0].webhook" in done.stderr and "Traceback" not in done.stderr


def test_check_config_accepts_an_alert_to_a_notify_channel(tmp_path: Path) -> None:
    server = '[server]\npublic_url = "https://dash.example.org"\n'
    toml = f'{server}{ALERT}notify = "ops.alerts"\nwebhook = "https://hooks.example.org/x"\n'
    done = check_config(tmp_path, toml)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_check_config_warns_when_a_webhook_would_send_loopback_links(tmp_path: Path) -> None:
    toml = f'{ALERT}notify = "ops.alerts"\nwebhook = "https://hooks.example.org/x"\n'
    done = check_config(tmp_path, toml)
    assert done.returncode == 0, done.stderr
    assert done.stderr == (
        "pulseboard: warning: alerts[0].webhook: server.public_url is unset, so the links it "
        "sends point to http://127.0.0.1:8000, which only this machine reaches\n"
    )


@pytest.mark.parametrize("name", ["missing.log", "*.log"])
def test_check_config_warns_on_a_logtail_path_that_matches_nothing(
    tmp_path: Path, name: str
) -> None:
    (tmp_path / "other.txt").write_text("")
    path = tmp_path / name
    done = check_config(tmp_path, f'[[sources]]\ntype = "logtail"\npath = "{path}"\n')
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"pulseboard: warning: sources[0].path: {str(path)!r} matches no file\n"
    assert done.stdout.startswith("ok")
