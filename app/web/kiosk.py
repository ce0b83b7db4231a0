"""Kiosk links: a wall screen signs in by opening a URL, with nobody typing a token.

``pulseboard kiosk-link`` asks the running server (``POST /api/kiosk-links``,
with the caller's token) for a one-time code; the server keeps it in its
session store (app/sessions.py: this process, or Redis when the broker is
shared, so any gateway can redeem it) and answers the URL ``/kiosk?code=…``.
Opening it takes the code (single use; ``--ttl``, 10 minutes by default), opens a session
and answers 303 to the board with ``?kiosk=1``: the code leaves the address
bar, the history and any later ``Referer``.

The session is read-only: it reads what the token that asked may read, and
publishes nothing (a wall screen's cookie is not a publishing credential).
Only a bearer token makes links: a session (a copied cookie) could otherwise
mint sessions that outlive its own sign-out.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

import msgspec
from quart import Blueprint, Response, request

from app.boards import Board, board_readable, boards_from_settings
from app.durations import parse_duration
from app.events import PayloadError
from app.web.errors import error_response
from app.web.params import check_known, decode_json
from app.web.runtime import Site, current_runtime
from app.web.security import (
    check_read,
    current_grant,
    failure_throttle,
    session_store,
    sign_in,
    signed_in,
)

log = logging.getLogger("pulseboard.kiosk")

blueprint = Blueprint("kiosk", __name__)

DEFAULT_TTL_S = 600.0
MAX_TTL_S = 86400.0
REDEEM_PARAMETERS = frozenset({"code"})


class KioskRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The body of ``POST /api/kiosk-links``: which board, how long the code lives."""

    board: str | None = None
    ttl: str | float | None = None


@blueprint.post("/api/kiosk-links")
async def create_link() -> Response:
    """A one-time sign-in URL for a wall screen: ``201 {"url", "board", "expires_in"}``."""
    runtime = current_runtime()
    check_known(request.args.keys(), frozenset())
    wanted = await _read_request()
    ttl_s = _ttl(wanted.ttl)
    board = _board(runtime, wanted.board)
    target = _target(wanted.board)
    base = _base_url(runtime)
    if not runtime.authority.read_required:  # every page is open: nothing to sign in to
        return _created({"url": base + target, "board": board.name, "expires_in": None})
    refusal = check_read(())  # a 401 without a token
    grant = current_grant()
    if refusal is not None or grant is None:
        return refusal or error_response(401, "a read token is required")
    if signed_in():  # a copied cookie must not mint sessions that outlive its own sign-out
        return error_response(403, "kiosk links are made with a bearer token, not a session")
    if not board_readable(board, grant):
        return error_response(
            403, f"this token may read no channel of board {board.name!r}", {"board": board.name}
        )
    value = msgspec.json.encode({"grant": grant.id, "board": wanted.board}).decode()
    code = await session_store().create_code(value, ttl_s)
    log.info("kiosk link created grant=%s board=%s ttl=%.0fs", grant.id, board.name, ttl_s)
    url = f"{base}/kiosk?{urlencode({'code': code})}"
    return _created({"url": url, "board": board.name, "expires_in": ttl_s})


@blueprint.get("/kiosk")
async def redeem() -> Response:
    """Take the code, open a read-only session, 303 to the board without the code."""
    runtime = current_runtime()
    check_known(request.args.keys(), REDEEM_PARAMETERS)
    code = request.args.get("code", "")
    client = request.remote_addr or "-"
    throttle = failure_throttle()
    if throttle.wait_s(client) > 0:
        return _refused(runtime, 429, "Too many wrong kiosk codes: try again in a minute.")
    if not code:
        return _refused(runtime, 400, "This address has no kiosk code.")
    value = await session_store().take_code(code) if len(code) <= 100 else None
    if value is None:
        throttle.failed(client)
        log.warning("kiosk code refused (unknown, used or expired) client=%s", client)
        return _refused(runtime, 410, "This kiosk link was already used or has expired.")
    stored: dict[str, Any] = msgspec.json.decode(value)
    grant = runtime.authority.for_session(stored["grant"])
    if grant is None:
        return _refused(runtime, 410, "The token that made this kiosk link is no longer valid.")
    await sign_in(grant, read_only=True)
    log.info("kiosk link used grant=%s client=%s", grant.id, client)
    return Response("", status=303, headers={"Location": _target(stored["board"])})


async def _read_request() -> KioskRequest:
    raw = await request.get_data()
    if not raw.strip():
        return KioskRequest()
    try:
        return msgspec.convert(decode_json(raw, "body"), KioskRequest, strict=True)
    except msgspec.ValidationError as error:
        raise PayloadError("body", str(error)) from None


def _ttl(ttl: str | float | None) -> float:
    if ttl is None:
        return DEFAULT_TTL_S
    try:
        seconds = parse_duration(ttl)
    except ValueError as error:
        raise PayloadError("ttl", str(error)) from None
    if not 1 <= seconds <= MAX_TTL_S:
        raise PayloadError("ttl", "expected from 1s to 24h")
    return seconds


def _board(runtime: Site, name: str | None) -> Board:
    boards = boards_from_settings(runtime.settings.boards)
    board = boards[0] if name is None else next((b for b in boards if b.name == name), None)
    if board is None:
        known = ", ".join(b.name for b in boards)
        raise PayloadError("board", f"no board {name!r} (known: {known})")
    return board


def _target(board: str | None) -> str:
    """The board's address on the wall: the navigation hidden."""
    return ("/" if board is None else f"/boards/{board}") + "?kiosk=1"


def _base_url(runtime: Site) -> str:
    """``server.public_url``, else the address the caller reached us at."""
    return (runtime.settings.server.public_url or request.host_url).rstrip("/")


def _created(body: dict[str, Any]) -> Response:
    return Response(msgspec.json.encode(body), status=201, content_type="application/json")


def _refused(runtime: Site, status: int, message: str) -> Response:
    html = runtime.renderer.env.get_template("kiosk.html").render(message=message)
    return Response(html, status=status, content_type="text/html; charset=utf-8")
