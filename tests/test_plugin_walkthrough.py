"""docs/plugins.md's walkthrough, step by step: a fresh venv, the plugin pip-installed, a board.

Offline: the fresh venv sees the project's venv (Pulseboard and its dependencies) through a
``.pth`` file, and pip installs the example plugin with ``--no-index --no-deps``. The config is
the one the walkthrough shows, read from the document.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import ServerProcess
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "pulseboard-weather"
WALKTHROUGH = "## From an empty directory to a panel on the board"

pytestmark = pytest.mark.slow


def walkthrough_config() -> dict[str, Any]:
    """The first TOML block of the walkthrough section of docs/plugins.md."""
    text = (ROOT / "docs" / "plugins.md").read_text()
    section = text[text.index(WALKTHROUGH) :]
    block = re.search(r"```toml\n(.*?)```", section, re.S)
    assert block is not None, "the walkthrough shows its config"
    return tomllib.loads(block.group(1))


def run(*command: str | Path, cwd: Path) -> str:
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{command}: {done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_walkthrough_puts_a_card_per_city_on_the_board(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wall = tmp_path / "wall"
    wall.mkdir()
    run(sys.executable, "-m", "venv", ".venv", cwd=wall)
    venv_python = wall / ".venv" / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    fresh_site = Path(run(venv_python, "-c", purelib, cwd=wall).strip())
    project_site = sysconfig.get_paths()["purelib"]  # addsitedir: its own .pth files count too
    pth = f"import site; site.addsitedir({project_site!r})\n"
    (fresh_site / "pulseboard-dev.pth").write_text(pth)
    shutil.copytree(EXAMPLE, wall / "pulseboard-weather", ignore=shutil.ignore_patterns("build"))
    pip = (venv_python, "-m", "pip", "install", "--no-index", "--no-deps", "--no-build-isolation")
    run(*pip, "./pulseboard-weather", cwd=wall)
    listed = run(venv_python, "-m", "app", "sources", "list", cwd=wall)
    assert re.search(r"^weather\s+simulated weather readings", listed, re.M), listed

    config = walkthrough_config()
    cities = config["sources"][0]["cities"]
    config["sources"][0]["interval"] = 0.2  # the walkthrough's 2 s, faster for the test
    server = ServerProcess(wall, config)
    run(venv_python, "-m", "app", "check-config", server.config_path, cwd=wall)
    monkeypatch.setattr(sys, "executable", str(venv_python))  # serve with the fresh venv
    server.start()
    pages: list[str] = []

    def a_card_per_city() -> bool:
        pages.append(httpx.get(f"{server.url}/", headers={"Host": "127.0.0.1"}).text)
        return pages[-1].count('<li id="weather-city-') == len(cities)

    try:
        wait_until(a_card_per_city, "a card per city on the Weather board", 30)
    finally:
        server.stop()
    assert 'class="panel panel-weather"' in pages[-1]
    for city in cities:
        assert f'<span class="city">{city}</span>' in pages[-1]
