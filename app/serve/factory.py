"""``create_app``: the Quart app for some settings. It wires the pieces; nothing else.

Its own module, not ``app/__init__.py``: importing a piece (``app.events``, what
a plugin imports) must not load Quart, Hypercorn and the whole server.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict

from quart import Quart, Response, current_app, request

from app.serve.runtime import Runtime, build_runtime
from app.settings import Settings, load_settings
from app.web import acks, api, dashboard, fastpath, kiosk, openapi, ops, stream
from app.web.asgi import StreamingQuart
from app.web.errors import install_error_handlers
from app.web.lean_publish import LeanPublish
from app.web.runtime import EXTENSION, Site
from app.web.security import GUARD, install_security


def create_app(settings: Settings | None = None, *, run_sources: bool = True) -> StreamingQuart:
    """Build the Quart app for ``settings`` (default: config file plus environment)."""
    settings = settings if settings is not None else load_settings()
    runtime = build_runtime(settings, run_sources=run_sources)
    app = StreamingQuart(__name__, static_folder=None)
    app.fast_paths = fastpath.probe()
    runtime.metrics.fast_paths = asdict(app.fast_paths)
    app.config["MAX_CONTENT_LENGTH"] = settings.server.max_body_bytes
    app.config["BODY_TIMEOUT"] = settings.server.body_timeout
    site: Site = runtime  # mypy checks that the runtime provides what requests read
    app.extensions[EXTENSION] = site
    secret_key = settings.auth.secret_key or secrets.token_urlsafe(32)
    install_security(app, settings, secret_key)
    for blueprint in (
        stream.blueprint,
        api.blueprint,
        acks.blueprint,
        ops.blueprint,
        openapi.blueprint,
        kiosk.blueprint,
        dashboard.blueprint,
    ):
        app.register_blueprint(blueprint)
    install_error_handlers(app)
    app.after_request(_count_request)
    app.lean_publish = LeanPublish(
        site, app.extensions[GUARD], app.asgi_app, app.fast_paths.lean_answer
    )
    app.before_serving(runtime.start)
    app.after_serving(runtime.stop)
    return app


async def _count_request(response: Response) -> Response:
    runtime = runtime_of(current_app)
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    runtime.count_request(route, response.status_code)
    return response


def runtime_of(app: Quart) -> Runtime:
    """The Runtime ``create_app`` attached to ``app``."""
    runtime: Runtime = app.extensions[EXTENSION]
    return runtime
