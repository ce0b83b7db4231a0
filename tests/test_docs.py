"""The docs stay true to the code: every config key documented, with its default."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import msgspec

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
ROW = re.compile(r"^\| `([a-z_.\[\]]+)` \| (.+?) \| .+ \|$", re.MULTILINE)


def schema_keys(struct: type[msgspec.Struct] = Settings, prefix: str = "") -> dict[str, Any]:
    """Every settings key with its default (``...`` when required)."""
    keys: dict[str, Any] = {}
    for field in msgspec.structs.fields(struct):
        name = f"{prefix}{field.name}"
        inner = getattr(field.type, "__args__", (None,))[0]
        if isinstance(field.type, type) and issubclass(field.type, msgspec.Struct):
            keys.update(schema_keys(field.type, f"{name}."))
        elif isinstance(inner, type) and issubclass(inner, msgspec.Struct):
            keys.update(schema_keys(inner, f"{name}[]."))
        elif field.default is not msgspec.NODEFAULT:
            keys[name] = field.default
        elif field.default_factory is not msgspec.NODEFAULT:
            keys[name] = field.default_factory()
        else:
            keys[name] = ...
    return keys


def as_doc(value: Any) -> str:
    if value is ...:
        return "(required)"
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, dict):
        return "`{ " + ", ".join(f"{k} = {v}" for k, v in value.items()) + " }`"
    return f"`{value}`"


def test_operations_documents_every_config_key_with_its_default() -> None:
    text = (ROOT / "docs" / "operations.md").read_text()
    text = text.split("## Configuration reference")[1].split("\n## ")[0]
    documented = dict(ROW.findall(text))
    expected = {key: as_doc(default) for key, default in schema_keys().items()}
    assert set(documented) == set(expected)
    assert documented == expected


def test_shipped_config_uses_only_documented_sections() -> None:
    text = (ROOT / "config" / "default.toml").read_text()
    sections = set(re.findall(r"^\[\[?([a-z_.]+)\]\]?", text, re.MULTILINE))
    assert sections <= {
        "server",
        "broker",
        "auth",
        "limits",
        "log",
        "channels",
        "sources",
        "alerts",
        "auth.tokens",
        "boards",
    }


def test_operations_documents_every_metric() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from app.serve.runtime import build_runtime
    from app.settings import settings_from_dict

    runtime = build_runtime(settings_from_dict({}), run_sources=False)
    exposed = {
        family.name + ("_total" if family.type == "counter" else "")
        for family in text_string_to_metric_families(runtime.metrics.exposition().decode())
    }
    text = (ROOT / "docs" / "operations.md").read_text()
    documented = set(re.findall(r"^\| `(pulseboard_[a-z_]+)` \|", text, re.MULTILINE))
    assert exposed == documented


MODULE = re.compile(r"`(app/[\w/]+\.py)`")


def architecture_section(title: str) -> str:
    text = (ROOT / "docs" / "architecture.md").read_text()
    return text.split(f"## {title}\n")[1].split("\n## ")[0]


def test_architecture_lists_every_module() -> None:
    listed = set(MODULE.findall(architecture_section("Modules")))
    modules = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "app").rglob("*.py")
        if path.name != "__init__.py" or path.read_text().strip()
    }
    assert sorted(modules - listed) == [], "modules without a row in docs/architecture.md"
    assert sorted(listed - modules) == [], "rows for modules that do not exist"


def test_architecture_draws_the_layers_the_contract_checks() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c["layers"] for c in config["contracts"] if c["type"] == "layers")
    drawn = [
        line.split("  ")[0].strip().replace("/", "")
        for line in architecture_section("Layers").split("```")[1].splitlines()
        if line.strip() and not line.strip().startswith("─")
    ]
    assert drawn == layers
