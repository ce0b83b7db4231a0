"""Importing a piece costs a piece: what a plugin imports does not load the server."""

from __future__ import annotations

import subprocess
import sys

from tests.support.server import ROOT

SERVER_PACKAGES = ("quart", "hypercorn", "watchfiles")


def imported_modules(statement: str) -> set[str]:
    """Every module ``statement`` imports in a fresh interpreter (``-X importtime``)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }


def test_a_plugin_importing_events_and_the_source_contract_loads_no_server() -> None:
    modules = imported_modules("import app.events, app.sources.base")
    assert "app.events" in modules
    assert "app.sources.base" in modules
    loaded = sorted(m for m in modules if m.split(".")[0] in SERVER_PACKAGES)
    assert loaded == []
    assert "app.serve.factory" not in modules


def test_the_factory_still_builds_the_server() -> None:
    modules = imported_modules("import app.serve.factory")
    assert {"quart", "hypercorn"} <= modules
