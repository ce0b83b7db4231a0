"""Settings: TOML plus environment; every refusal names the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import SettingsError, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pulseboard.toml"
    path.write_text(text)
    return path


def test_defaults_and_the_shipped_config_load() -> None:
    settings = load_settings(Path("config/default.toml"), environ={})
    assert settings.broker.url == "sqlite:///.pulseboard/pulseboard.db"
    assert settings.server.bind == "127.0.0.1:8000"


def test_without_a_config_the_broker_forgets_on_restart(tmp_path: Path) -> None:
    """Test configs set no broker: they keep a throwaway store, never the shared state file."""
    settings = load_settings(write(tmp_path, ""), environ={})
    assert settings.broker.url == "memory://"


@pytest.mark.parametrize(
    ("broker", "message"),
    [
        ('url = "sqlite:///"', "broker.url: expected memory://, sqlite:///PATH.db"),
        ('url = "sqlite://host/x.db"', "broker.url: expected memory://, sqlite:///PATH.db"),
        ('retention = { max_age = "soon" }', "broker.retention.max_age: expected a duration"),
        ("retention = { max_events = -1 }", "broker.retention.max_events"),
        ("max_bytes = -5", "broker.max_bytes"),
    ],
)
def test_bad_sqlite_broker_keys_are_named(tmp_path: Path, broker: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(write(tmp_path, f"[broker]\n{broker}\n"), environ={})


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nbind = "127.0.0.1:8000"\nheartbeat = 15.0\n')
    settings = load_settings(
        path,
        environ={
            "PULSEBOARD_SERVER__BIND": "127.0.0.1:9000",
            "PULSEBOARD_SERVER__HEARTBEAT": "2",
            "PULSEBOARD_AUTH__PUBLISH_TOKENS": '["token-one", "token-two"]',
            "OTHER": "ignored",
        },
    )
    assert settings.server.bind == "127.0.0.1:9000"
    assert settings.server.heartbeat == 2.0
    assert settings.auth.publish_tokens == ["token-one", "token-two"]


def test_environment_reaches_into_arrays_of_tables(tmp_path: Path) -> None:
    path = write(tmp_path, '[[channels]]\nname = "chat.lobby"\nkind = "chat"\n')
    settings = load_settings(path, environ={"PULSEBOARD_CHANNELS__0__TITLE": "Lobby"})
    assert settings.channels[0].title == "Lobby"


@pytest.mark.parametrize(
    ("text", "environ", "key"),
    [
        ("[server]\nbnd = 1\n", {}, "server.bnd: unknown key"),
        ("[servr]\n", {}, "servr: unknown key"),
        ("[server]\nheartbeat = -1\n", {}, "server.heartbeat:"),
        ('[server]\nheartbeat = "soon"\n', {}, "server.heartbeat:"),
        ('[server]\nbind = "nowhere"\n', {}, "server.bind:"),
        ('[broker]\nurl = "mysql://x"\n', {}, "broker.url:"),
        ('[[channels]]\nname = "Bad"\nkind = "chat"\n', {}, "channels[0].name:"),
        ('[[channels]]\nname = "ok"\n', {}, "channels[0].kind: required"),
        ("", {"PULSEBOARD_SERVER__MAX_LAG": "0"}, "server.max_lag:"),
        ("", {"PULSEBOARD_SERVER__NOPE": "1"}, "server.nope: unknown key"),
        ("[server\n", {}, "not valid TOML"),
        ('[server]\nbind = "0.0.0.0:8000"\n', {}, "server.allowed_hosts: server.bind"),
        ('[server]\nallowed_hosts = ["https://a.example"]\n', {}, "server.allowed_hosts:"),
        ('[auth]\nsession_ttl = "12 hours"\n', {}, "auth.session_ttl:"),
        ('[auth]\nsession_ttl = "0s"\n', {}, "auth.session_ttl:"),
        ('[[auth.tokens]]\ntoken = "t0123456789"\nmetrics = 1\n', {}, "auth.tokens[0].metrics:"),
        ('[limits]\nchannel_idle_ttl = "7 days"\n', {}, "limits.channel_idle_ttl:"),
        ('[limits]\nchannel_idle_ttl = "0s"\n', {}, "limits.channel_idle_ttl:"),
        ("[limits]\nmax_channels = 0\n", {}, "limits.max_channels:"),
        ('[server]\ncors_origins = ["status.example"]\n', {}, "server.cors_origins:"),
        ('[server]\ncors_origins = ["https://a.example/page"]\n', {}, "server.cors_origins:"),
    ],
)
def test_bad_config_is_refused_naming_the_key(
    tmp_path: Path, text: str, environ: dict[str, str], key: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(write(tmp_path, text), environ=environ)
    assert key in str(refused.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_a_file_that_is_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[server]\nbind = "\xff"\n')
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(path, environ={})


def test_the_clients_url_and_token_variables_are_not_config_keys() -> None:
    environ = {"PULSEBOARD_URL": "http://127.0.0.1:8000", "PULSEBOARD_TOKEN": "s3cret-token"}
    assert load_settings(None, environ=environ) == load_settings(None, environ={})


def test_channel_bounds_default_and_read_durations(tmp_path: Path) -> None:
    defaults = load_settings(write(tmp_path, ""), environ={})
    assert defaults.limits.max_channels == 10_000
    assert defaults.limits.channel_idle_ttl_s == 7 * 86400
    for text, seconds in [("45s", 45), ("30m", 1800), ("12h", 43200), ("1.5d", 129600)]:
        settings = load_settings(
            write(tmp_path, ""), environ={"PULSEBOARD_LIMITS__CHANNEL_IDLE_TTL": text}
        )
        assert settings.limits.channel_idle_ttl_s == seconds


ALERT = '[[alerts]]\nname = "Errors"\nchannel = "log.*"\npattern = "ERROR"\nnotify = "ops.alerts"\n'


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[[alerts]]\nchannel = "log.*"\npattern = "E"\nnotify = "ops.alerts"\n', "alerts[0].name"),
        (f'{ALERT}cooldown = "5 minutes"\n', "alerts[0].cooldown:"),
        (f'{ALERT}cooldown = "0s"\n', "alerts[0].cooldown:"),
        (f'{ALERT}cooldown = "5m"\nwindow = 60\n', "alerts[0].window: the older name of cooldown"),
        (f'{ALERT}format = "teams"\n', "alerts[0].format"),
        (ALERT * 2, "alerts[1].name: 'Errors' is already the name of alerts[0]"),
        ('[server]\npublic_url = "dash.example.com"\n', "server.public_url:"),
        ('[server]\npublic_url = "https://dash.example.com/?x=1"\n', "server.public_url:"),
    ],
)
def test_bad_alert_and_public_url_keys_are_refused_naming_the_key(
    tmp_path: Path, text: str, key: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(write(tmp_path, text), environ={})
    assert key in str(refused.value)


def test_an_alert_reads_its_cooldown_as_a_duration(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, f'{ALERT}cooldown = "10m"\n'), environ={})
    [alert] = settings.alerts
    assert (alert.cooldown_s, alert.level, alert.format) == (600, "error", "json")
