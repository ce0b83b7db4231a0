"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

from quart import Blueprint, Response, jsonify

from app.runtime import Runtime
from app.web.runtime import current_runtime

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
