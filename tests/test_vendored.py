"""The vendored assets match static/VENDORED.md, and nothing of our own is script."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "static"
TEMPLATES = ROOT / "templates"
ROW = re.compile(r"^\| (?P<file>[^|]+?) \| (?P<package>[^|]+?) \| .+? \| (?P<sha>[0-9a-f]{64}) \|")
INLINE_SCRIPT = re.compile(
    r"<script(?![^>]*\bsrc=)|\bhx-on|\bdata-hx-on|\son[a-z]+\s*=|javascript:", re.IGNORECASE
)


def vendored() -> dict[str, tuple[str, str]]:
    rows = (ROW.match(line) for line in (STATIC / "VENDORED.md").read_text().splitlines())
    return {m["file"]: (m["package"], m["sha"]) for m in rows if m}


def test_every_vendored_file_matches_its_checksum() -> None:
    table = vendored()
    assert set(table) == {
        "htmx.min.js",
        "htmx.LICENSE.txt",
        "htmx-ext-sse.min.js",
        "htmx-ext-sse.LICENSE.txt",
    }
    for name, (_package, sha) in table.items():
        assert hashlib.sha256((STATIC / name).read_bytes()).hexdigest() == sha, name


def test_versions_are_pinned_to_htmx_2_0_and_sse_2_2() -> None:
    packages = {package for package, _sha in vendored().values()}
    assert any(re.fullmatch(r"htmx\.org@2\.0\.\d+", p) for p in packages), packages
    assert any(re.fullmatch(r"htmx-ext-sse@2\.2\.\d+", p) for p in packages), packages


def test_no_javascript_of_our_own() -> None:
    scripts = {path.name for path in STATIC.rglob("*.js")}
    assert scripts == {"htmx.min.js", "htmx-ext-sse.min.js"}


def test_templates_carry_no_inline_script() -> None:
    for template in TEMPLATES.rglob("*.html"):
        found = INLINE_SCRIPT.search(template.read_text())
        assert found is None, f"{template.relative_to(ROOT)}: {found and found.group(0)!r}"
