"""Liveness, readiness and metrics for load balancers, orchestrators and Prometheus."""

from __future__ import annotations

from quart import Blueprint, Response, jsonify

from app.metrics import CONTENT_TYPE
from app.runtime import Runtime
from app.web.errors import error_response
from app.web.runtime import current_runtime
from app.web.security import current_grant

blueprint = Blueprint("ops", __name__)


@blueprint.get("/healthz")
async def healthz() -> Response:
    """The process answers."""
    return jsonify({"status": "ok"})


@blueprint.get("/readyz")
async def readyz() -> Response:
    """Ready when accepting, the broker is reachable and every source runs; else 503."""
    runtime: Runtime = current_runtime()
    supervisor = runtime.supervisor
    body = {
        "ready": runtime.ready,
        "accepting": runtime.accepting,
        "broker": runtime.broker.ready,
        "sources": {}
        if supervisor is None
        else {label: stat.running for label, stat in supervisor.stats.items()},
        "streams": len(runtime.streams.streams),
    }
    response = jsonify(body)
    response.status_code = 200 if runtime.ready else 503
    return response


@blueprint.get("/metrics")
async def metrics() -> Response:
    """Prometheus text format; needs a token when reading does, unless ``auth.metrics_public``."""
    runtime: Runtime = current_runtime()
    public = runtime.settings.auth.metrics_public or not runtime.authority.read_required
    if not public and current_grant() is None:
        return error_response(401, "a token is required", None, {"WWW-Authenticate": "Bearer"})
    return Response(runtime.metrics.exposition(), content_type=CONTENT_TYPE)
