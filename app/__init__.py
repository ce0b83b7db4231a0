"""Pulseboard: a real-time dashboard server. ``create_app`` wires the pieces; nothing else."""

from __future__ import annotations

import secrets

from quart import Quart, Response, request

from app.runtime import Runtime, build_runtime
from app.settings import Settings, load_settings
from app.web import acks, api, dashboard, ops, stream
from app.web.asgi import StreamingQuart
from app.web.errors import install_error_handlers
from app.web.runtime import EXTENSION, current_runtime
from app.web.security import install_security


def create_app(settings: Settings | None = None, *, run_sources: bool = True) -> Quart:
    """Build the Quart app for ``settings`` (default: config file plus environment)."""
    settings = settings if settings is not None else load_settings()
    runtime = build_runtime(settings, run_sources=run_sources)
    app = StreamingQuart(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.server.max_body_bytes
    app.config["BODY_TIMEOUT"] = settings.server.body_timeout
    app.extensions[EXTENSION] = runtime
    secret_key = settings.auth.secret_key or secrets.token_urlsafe(32)
    install_security(app, settings, secret_key)
    for blueprint in (stream.blueprint, api.blueprint, ops.blueprint, dashboard.blueprint):
        app.register_blueprint(blueprint)
    app.register_blueprint(acks.blueprint)
    install_error_handlers(app)
    app.after_request(_count_request)
    app.before_serving(runtime.start)
    app.after_serving(runtime.stop)
    return app


async def _count_request(response: Response) -> Response:
    runtime = current_runtime()
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    runtime.metrics.http_requests.labels(route, str(response.status_code)).inc()
    return response


def runtime_of(app: Quart) -> Runtime:
    """The Runtime ``create_app`` attached to ``app``."""
    runtime: Runtime = app.extensions[EXTENSION]
    return runtime
