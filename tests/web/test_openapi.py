"""``/openapi.json`` stays true to the routes: paths, methods, path and query parameters.

The fuzzer (tests/e2e/test_fuzz.py) checks the answers; these check that the
document describes every route and nothing else, so a new route or a new
query parameter cannot go undocumented.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from quart import Quart

from app.events import BUILTIN_KINDS, Kind, KindRegistry
from app.serve.factory import create_app
from app.settings import LimitsSettings, settings_from_dict
from app.web.openapi import openapi_document

IMPLICIT_METHODS = {"HEAD", "OPTIONS"}
READERS = {"get", "getlist"}


@pytest.fixture
async def app() -> AsyncIterator[Quart]:
    quart_app = create_app(settings_from_dict({}), run_sources=False)
    async with quart_app.test_app():
        yield quart_app


def openapi_path(rule: str) -> str:
    """``/api/channels/<channel>/events`` → ``/api/channels/{channel}/events``."""
    return re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule)


def routes(app: Quart) -> dict[tuple[str, str], Any]:
    """(path, method) → the Werkzeug rule, for every route and explicit method."""
    found = {}
    for rule in app.url_map.iter_rules():
        for method in (rule.methods or set()) - IMPLICIT_METHODS:
            found[(openapi_path(rule.rule), method.lower())] = rule
    return found


def documented(app: Quart) -> dict[tuple[str, str], dict[str, Any]]:
    document = openapi_document(KindRegistry(), LimitsSettings())
    return {
        (path, method): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


def parameters(operation: dict[str, Any], where: str) -> set[str]:
    return {p["name"] for p in operation.get("parameters", []) if p["in"] == where}


def names_read(handler: Any, container: str) -> set[str]:
    """Literal keys ``handler`` reads from ``args``/``request.args`` (or ``form``), itself or
    through the functions of its module that it calls."""
    tree = ast.parse(Path(inspect.getfile(handler)).read_text())
    functions = {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    names: set[str] = set()
    seen: set[str] = set()
    todo = [handler.__name__]
    while todo:
        name = todo.pop()
        if name in seen or name not in functions:
            continue
        seen.add(name)
        for node in ast.walk(functions[name]):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                todo.append(node.func.id)
            names |= key_read(node, container)
    return names


def key_read(node: ast.AST, container: str) -> set[str]:
    """``{"x"}`` for ``container.get("x")``, ``container.getlist("x")`` or ``container["x"]``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if node.func.attr not in READERS or not node.args:
            return set()
        target, key = node.func.value, node.args[0]
    elif isinstance(node, ast.Subscript):
        target, key = node.value, node.slice
    else:
        return set()
    named = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
    if named == container and isinstance(key, ast.Constant) and isinstance(key.value, str):
        return {key.value}
    return set()


def test_every_route_is_documented_and_every_documented_operation_is_a_route(app: Quart) -> None:
    assert set(routes(app)) == set(documented(app))


def test_path_parameters_are_the_rules_arguments(app: Quart) -> None:
    operations = documented(app)
    for key, rule in routes(app).items():
        assert parameters(operations[key], "path") == set(rule.arguments), key


def test_query_parameters_are_those_the_handlers_read(app: Quart) -> None:
    operations = documented(app)
    checked = 0
    for key, rule in routes(app).items():
        handler = app.view_functions[rule.endpoint]
        if not handler.__module__.startswith("app."):
            continue  # Quart's own static-file view
        assert names_read(handler, "args") == parameters(operations[key], "query"), key
        checked += 1
    assert checked > 10


def test_login_form_fields_are_those_the_handler_reads(app: Quart) -> None:
    body = documented(app)[("/login", "post")]["requestBody"]["content"]
    fields = body["application/x-www-form-urlencoded"]["schema"]["properties"]
    assert names_read(app.view_functions["auth.login"], "form") == set(fields)


def test_every_kind_has_its_payload_schema_including_plugins() -> None:
    class PingPayload(msgspec.Struct, forbid_unknown_fields=True):
        host: str

    kinds = KindRegistry((*BUILTIN_KINDS, Kind(name="ping", schema=PingPayload)))
    document = openapi_document(kinds, LimitsSettings())
    schemas = document["components"]["schemas"]
    assert {"ChatPayload", "NotifyPayload", "LogPayload", "TickerPayload"} <= set(schemas)
    assert schemas["PingPayload"]["required"] == ["host"]
    body = document["paths"]["/api/channels/{channel}/events"]["post"]["requestBody"]
    refs = body["content"]["application/json"]["schema"]["anyOf"]
    assert {"$ref": "#/components/schemas/PingPayload"} in refs


def test_limits_come_from_the_settings() -> None:
    document = openapi_document(KindRegistry(), LimitsSettings(history_limit=7))
    events = document["paths"]["/events"]["get"]["parameters"]
    history = next(p for p in events if p["name"] == "history")
    assert history["schema"]["maximum"] == 7


async def test_the_server_serves_the_document_for_its_kinds_and_limits(app: Quart) -> None:
    response = await app.test_client().get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    document = await response.get_json()
    assert document["openapi"] == "3.1.0"
    assert document == openapi_document(KindRegistry(), LimitsSettings())
