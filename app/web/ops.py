"""Liveness, readiness and metrics for load balancers, orchestrators and Prometheus."""

from __future__ import annotations

from quart import Blueprint, Response, jsonify

from app.web.errors import error_response
from app.web.runtime import Site, current_runtime
from app.web.security import current_grant

blueprint = Blueprint("ops", __name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # Prometheus text 0.0.4


@blueprint.get("/healthz")
async def healthz() -> Response:
    """The process answers."""
    return jsonify({"status": "ok"})


@blueprint.get("/readyz")
async def readyz() -> Response:
    """Ready when accepting, the broker is reachable and every source runs; else 503."""
    runtime: Site = current_runtime()
    body = {
        "ready": runtime.ready,
        "accepting": runtime.accepting,
        "broker": runtime.broker.ready,
        "sources": runtime.source_states(),
        "streams": len(runtime.streams.streams),
    }
    response = jsonify(body)
    response.status_code = 200 if runtime.ready else 503
    return response


@blueprint.get("/metrics")
async def metrics() -> Response:
    """Prometheus text; with tokens configured, only for a ``metrics = true`` token.

    The exposition names every channel, so a token scoped to ``ops.*`` (or
    one that only publishes) must not read it; ``auth.metrics_public`` opens it.
    """
    runtime: Site = current_runtime()
    if runtime.authority.enabled and not runtime.settings.auth.metrics_public:
        grant = current_grant()
        if grant is None:
            return error_response(
                401, "a metrics token is required", None, {"WWW-Authenticate": "Bearer"}
            )
        if not grant.metrics:
            return error_response(403, "this token may not read /metrics (metrics = true)")
    return Response(runtime.exposition(), content_type=CONTENT_TYPE)
