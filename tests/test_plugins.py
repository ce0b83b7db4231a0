"""The plugin door: built-ins and third-party packages register through the same entry points.

The example package in ``examples/pulseboard-weather`` is installed into a
temporary directory (its code and the .dist-info its pyproject.toml
describes), then a fresh interpreter with that directory on its path finds
the type through the entry point and runs it under the Supervisor.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.events import Kind, KindRegistry, KindView
from app.sources.base import SourceConfigError, SourceType, load_source_types, register_kinds
from tests.support.server import ServerProcess
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "pulseboard-weather"

RUN_UNDER_SUPERVISOR = """
import asyncio, json
from app.broker.base import Start
from app.broker.memory import MemoryBroker
from app.events import KindRegistry
from app.sources.base import Supervisor, configure_sources, load_source_types, register_kinds

async def main():
    types = load_source_types()
    kinds = KindRegistry()
    register_kinds(types.values(), kinds)
    broker = MemoryBroker(kinds, history_size=100, max_lag=100)

    async def publish(channel, kind, data):
        return await broker.publish(channel, kind, kinds.get(kind).validate(data))

    entry = {"type": "weather", "cities": ["Oslo", "Lima"], "interval": 0.05, "seed": 7}
    sources = configure_sources([entry], types)
    events = []
    async with broker.subscribe(["weather"], Start()) as subscription:
        supervisor = Supervisor(sources, publish)
        supervisor.start()
        async with asyncio.timeout(10):
            while len(events) < 4:
                await subscription.wake.wait()
                subscription.wake.clear()
                events += subscription.take()
        await supervisor.stop()
    print(json.dumps({
        "types": sorted(types),
        "channels": sources[0].type.channels(sources[0].config),
        "events": [event.as_json_dict() for event in events[:4]],
    }))

asyncio.run(main())
"""


RENDER_WITH_THE_PLUGINS_VIEW = """
import json
from app.events import Event, KindRegistry
from app.render import Renderer, create_environment
from app.sources.base import load_source_types, register_kinds

kinds = KindRegistry()
register_kinds(load_source_types().values(), kinds)
renderer = Renderer(create_environment(kinds), kinds)
readings = [("Oslo", 1.5), ("Lima", 20.5), ("Oslo", 2.5)]
events = [
    Event(f"e-{i}", "weather", "weather", 1.7e9 + i,
          {"city": city, "temp_c": temp_c, "wind_kmh": 3.0, "sky": "rain"}, i, i)
    for i, (city, temp_c) in enumerate(readings, start=1)
]
view = kinds.get("weather").view
print(json.dumps({
    "view": [view.template, view.cap, view.latest_value_key, view.spark_field],
    "snapshot": renderer.snapshot("weather", "weather", events),
    "event": renderer.event(events[-1]),
}))
"""


def python(code: str, path: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter whose import path starts with ``path``."""
    env = {**os.environ, "PYTHONPATH": str(path)}
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def write_dist_info(site: Path, name: str, version: str, entry_points: dict[str, Any]) -> None:
    """The .dist-info pip would leave on ``site``: what importlib.metadata reads."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    sections = [
        f"[{group}]\n" + "".join(f"{key} = {value}\n" for key, value in entries.items())
        for group, entries in entry_points.items()
    ]
    (info / "entry_points.txt").write_text("\n".join(sections))


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Install the example plugin on a temp path: its packages plus the dist-info of its pyproject.

    (``pip install --target`` would do the same, but building a wheel offline
    needs ``wheel`` or setuptools >= 70.1, which the dev environment lacks.)
    """
    site = tmp_path_factory.mktemp("site")
    pyproject = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())
    setuptools = pyproject["tool"]["setuptools"]
    for package in setuptools["packages"]:
        shutil.copytree(EXAMPLE / setuptools["package-dir"][""] / package, site / package)
    project = pyproject["project"]
    write_dist_info(site, project["name"], project["version"], project["entry-points"])
    return site


def test_the_installed_plugin_is_found_and_its_events_arrive(installed_plugin: Path) -> None:
    assert list(installed_plugin.glob("pulseboard_weather-0.1.0.dist-info"))
    result = python(RUN_UNDER_SUPERVISOR, installed_plugin)
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    assert {"weather", "ticker", "chat", "notify", "demo-log", "logtail"} <= set(report["types"])
    assert report["channels"] == [["weather", "weather"]]
    events = report["events"]
    assert [event["data"]["city"] for event in events] == ["Oslo", "Lima", "Oslo", "Lima"]
    assert {(event["channel"], event["kind"]) for event in events} == {("weather", "weather")}
    assert set(events[0]["data"]) == {"city", "temp_c", "wind_kmh", "sky"}


def test_the_plugin_kind_brings_its_view_and_its_partial(installed_plugin: Path) -> None:
    result = python(RENDER_WITH_THE_PLUGINS_VIEW, installed_plugin)
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["view"] == ["partials/_weather.html", 50, "city", "temp_c"]
    snapshot = report["snapshot"]
    assert snapshot.count('<li id="weather-city-') == 2, "one card per city"
    assert "2.5 °C" in snapshot and "1.5 °C" not in snapshot
    assert "Last 2 prices" in snapshot, "the sparkline of Oslo's temperatures"
    assert "#weather-list > li:nth-last-child(n+51)" in report["event"], "the view's cap"


def test_a_server_shows_the_plugins_panel_with_its_partial(
    installed_plugin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(installed_plugin))
    source = {"type": "weather", "cities": ["Oslo", "Lima"], "interval": 0.05, "seed": 7}
    server = ServerProcess(tmp_path, {"sources": [source]}).start()
    pages: list[str] = []

    def both_cities_shown() -> bool:
        pages.append(httpx.get(f"{server.url}/", headers={"Host": "127.0.0.1"}).text)
        return pages[-1].count('<li id="weather-city-') == 2

    try:
        wait_until(both_cities_shown, "a card per city on the dashboard", 30)
    finally:
        server.stop()
    assert 'class="panel panel-weather"' in pages[-1]
    assert 'sse-swap="weather"' in pages[-1]


@pytest.mark.slow
def test_the_plugins_own_tests_pass(installed_plugin: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        str(EXAMPLE / "tests"),
    ]
    env = {**os.environ, "PYTHONPATH": str(installed_plugin)}
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout


def test_without_the_plugin_the_type_is_unknown() -> None:
    assert "weather" not in load_source_types()


def test_the_built_ins_come_through_the_entry_point_door() -> None:
    types = load_source_types()
    for name in ("chat", "notify", "ticker", "demo-log", "logtail"):
        assert types[name].name == name
        assert types[name].config.__module__.startswith("app.sources.")


def fake_distribution(site: Path, name: str, entry: str, module: str) -> None:
    """A one-module distribution on ``site``, as pip would install it."""
    (site / f"{module}.py").write_text(textwrap.dedent(MODULES[module]))
    key, _, value = entry.partition(" = ")
    write_dist_info(site, name, "1.0", {"pulseboard.sources": {key: value}})


MODULES = {
    "impostor_ticker": """
        import msgspec
        from app.sources.base import SourceType

        class Config(msgspec.Struct):
            type: str

        TICKER = SourceType(name="ticker", config=Config, create=lambda config: None)
        """,
    "not_a_type": """
        WEATHER = {"name": "weather"}
        """,
    "broken_plugin": """
        import a_module_nobody_installed
        """,
}


def test_a_duplicate_type_name_is_an_error_naming_both(tmp_path: Path) -> None:
    fake_distribution(
        tmp_path, "impostor", "fast-ticker = impostor_ticker:TICKER", "impostor_ticker"
    )
    result = python("from app.sources.base import load_source_types; load_source_types()", tmp_path)
    assert result.returncode == 1
    assert "source type 'ticker' is registered twice" in result.stderr
    assert "pulseboard (ticker = app.sources.ticker:TICKER)" in result.stderr
    assert "impostor (fast-ticker = impostor_ticker:TICKER)" in result.stderr


@pytest.mark.parametrize(
    ("module", "message"),
    [
        ("not_a_type", "source plugin wrong (weather = not_a_type:WEATHER) is not a SourceType"),
        (
            "broken_plugin",
            "source plugin wrong (weather = broken_plugin:WEATHER) failed to load: "
            "ModuleNotFoundError",
        ),
    ],
)
def test_a_broken_plugin_is_an_error_naming_it(tmp_path: Path, module: str, message: str) -> None:
    fake_distribution(tmp_path, "wrong", f"weather = {module}:WEATHER", module)
    result = python("from app.sources.base import load_source_types; load_source_types()", tmp_path)
    assert result.returncode == 1
    assert message in result.stderr


def test_an_extra_type_with_a_taken_name_is_refused() -> None:
    chat = load_source_types()["chat"]
    with pytest.raises(
        SourceConfigError, match=r"'chat' is registered twice: by pulseboard .* and by"
    ):
        load_source_types(extra=[chat])


@pytest.mark.parametrize(
    "path",
    [
        "pyproject.toml",
        "src/pulseboard_weather/__init__.py",
        "src/pulseboard_weather/templates/partials/_weather.html",
        "tests/test_weather.py",
    ],
)
def test_the_docs_show_the_example_package_as_it_is(path: str) -> None:
    docs = (ROOT / "docs" / "plugins.md").read_text()
    assert (EXAMPLE / path).read_text().rstrip() in docs


def test_the_docs_name_every_field_of_source_type() -> None:
    docs = (ROOT / "docs" / "plugins.md").read_text()
    for field in dataclasses.fields(SourceType):
        assert f"`{field.name}" in docs or f"{field.name}=" in docs, field.name


def test_the_docs_name_every_field_of_the_kind_view() -> None:
    docs = (ROOT / "docs" / "plugins.md").read_text()
    for field in dataclasses.fields(KindView):
        assert f"`{field.name}`" in docs, field.name


def test_a_plugin_kind_that_takes_a_builtin_name_is_an_error_naming_the_plugin() -> None:
    chat = load_source_types()["chat"]
    other_chat = Kind("chat", KindRegistry().get("notify").schema)
    plugin = dataclasses.replace(chat, name="fancy-chat", kinds=(other_chat,))
    with pytest.raises(SourceConfigError, match="source type 'fancy-chat': kind 'chat'"):
        register_kinds([plugin], KindRegistry())
