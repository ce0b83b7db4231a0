"""Authentication, authorization, CSRF and security headers for every route.

Programs send ``Authorization: Bearer <token>``. Browsers log in once with a
token on ``/login`` and then hold a signed, HttpOnly, SameSite=Strict session
cookie (quart-auth) naming a server-side session, never the token.

Cross-site POSTs are refused by origin: a browser always sends ``Origin``
(and ``Sec-Fetch-Site``) on a POST, and a form posted from another site
cannot forge them; programs such as curl send neither and carry no cookie.

Before any of that, a request whose ``Host`` is not in
``server.allowed_hosts`` is answered 421: a page on ``evil.example`` whose
name an attacker re-points at 127.0.0.1 (DNS rebinding) is same-origin with
itself, so only the name it used gives it away.

The cookie names a server-side session (app/sessions.py), so logging out and
``auth.session_ttl`` end it; wrong tokens are throttled per address
(app/throttle.py).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlencode

from quart import Blueprint, Quart, Response, current_app, g, redirect, request
from quart.sessions import SessionInterface
from quart.typing import ResponseReturnValue
from quart_auth import AuthUser, QuartAuth, current_user, login_user, logout_user

from app.auth import Authority, Grant, bearer_token, session_value
from app.sessions import SessionStore, create_session_store
from app.settings import Settings
from app.throttle import FailureThrottle
from app.urls import host_allowed, safe_next, same_origin
from app.web.cors import install_cors
from app.web.errors import error_response
from app.web.runtime import Site, current_runtime

log = logging.getLogger("pulseboard.auth")

blueprint = Blueprint("auth", __name__)
GUARD = "pulseboard.guard"

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "style-src-attr 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    )
)


class NoSessions(SessionInterface):
    """No Flask-style session: quart-auth keeps its own cookie.

    Quart's default interface builds a signing serializer on every request
    once a secret key is set (5 % of a single POST's CPU in the profile).
    """

    async def open_session(self, app: Any, request: Any) -> None:
        """Always the null session."""
        return None

    async def save_session(self, app: Any, session: Any, response: Any) -> None:
        """Nothing to save."""
        return None


@dataclass(frozen=True)
class Guard:
    """The security state of one app: allowed hosts, sessions, the failure throttle."""

    hosts: tuple[str, ...]
    sessions: SessionStore
    throttle: FailureThrottle


def install_security(app: Quart, settings: Settings, secret_key: str) -> None:
    """Host, CSRF and identity checks before each request (in that order), headers after."""
    app.secret_key = secret_key
    app.session_interface = NoSessions()  # type: ignore[assignment]  # Quart types it narrowly
    QuartAuth(
        app,
        cookie_samesite="Strict",
        cookie_secure=settings.auth.cookie_secure,
        cookie_http_only=True,
    )
    guard = Guard(settings.server.host_names, create_session_store(settings), FailureThrottle())
    app.extensions[GUARD] = guard
    app.after_serving(guard.sessions.close)
    app.before_request(_refuse_unknown_host)
    app.before_request(_refuse_cross_site)
    app.before_request(_identify)
    install_cors(app, settings.server.cors_origin_names)
    app.after_request(_security_headers)
    app.register_blueprint(blueprint)


def _guard() -> Guard:
    return cast(Guard, current_app.extensions[GUARD])


async def _refuse_unknown_host() -> Response | None:
    if host_allowed(request.host, _guard().hosts):
        return None
    return error_response(
        421, "unknown Host: this server answers only the names in server.allowed_hosts", None
    )


async def _refuse_cross_site() -> Response | None:
    if request.method not in UNSAFE_METHODS:
        return None
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        return _cross_site()
    origin = request.headers.get("Origin")
    if origin is None:
        return None
    try:
        same = same_origin(origin, request.host, _guard().hosts)
    except ValueError:
        return error_response(400, "the Origin header is not a URL", {"field": "Origin"})
    return None if same else _cross_site()


def _cross_site() -> Response:
    log.warning(
        "refused cross-site %s %s client=%s", request.method, request.path, request.remote_addr
    )
    return error_response(403, "cross-site request refused", None)


async def _identify() -> ResponseReturnValue | None:
    """Put the caller's grant (or None) in ``g.grant``; a wrong bearer token is a 401."""
    authority = current_runtime().authority
    g.grant = None
    if not authority.enabled:
        return None  # no tokens: nobody to identify (and no cookie to parse per request)
    token = bearer_token(request.headers.get("Authorization"))
    if token is not None:
        return _check_bearer(authority, token)
    session_id = await _session_id()
    if session_id is not None:
        value = await _guard().sessions.grant_of(session_id)
        g.grant = authority.for_session(value) if value is not None else None
        g.signed_in = g.grant is not None
    if (
        authority.read_required
        and g.grant is None
        and request.method == "GET"
        and request.endpoint is not None
        and request.endpoint.startswith("dashboard.")
        and request.endpoint != "dashboard.static"
    ):
        return redirect("/login?" + urlencode({"next": request.full_path.rstrip("?")}, safe="/"))
    return None


def _check_bearer(authority: Authority, token: str) -> Response | None:
    """Set ``g.grant`` for a bearer token; a wrong one is a 401, many wrong ones a 429."""
    client = request.remote_addr or "-"
    throttle = _guard().throttle
    wait_s = throttle.wait_s(client)
    if wait_s > 0:
        _log_throttled(client, wait_s)
        return error_response(
            429, "too many wrong tokens: slow down", None, {"Retry-After": _seconds(wait_s)}
        )
    g.grant = authority.grant_for(token)
    if g.grant is None:
        throttle.failed(client)
        log.warning("auth failure: unknown bearer token client=%s path=%s", client, request.path)
        return error_response(401, "unknown token", None, {"WWW-Authenticate": "Bearer"})
    return None


def _log_throttled(client: str, wait_s: float) -> None:
    if _guard().throttle.log_refusal(client):
        log.warning(
            "auth throttled: too many failures client=%s retry_after=%s (further refusals "
            "of this client are not logged for a while)",
            client,
            _seconds(wait_s),
        )


def _seconds(wait_s: float) -> str:
    return str(max(1, math.ceil(wait_s)))


async def _session_id() -> str | None:
    if await current_user.is_authenticated:
        return current_user.auth_id
    return None


def signed_in() -> bool:
    """True when a session cookie (not a bearer header) named the caller: pages offer sign-out."""
    return bool(g.get("signed_in"))


def current_grant() -> Grant | None:
    """The grant of the caller of this request (None: anonymous)."""
    grant: Grant | None = g.get("grant")
    return grant


def check_read(patterns: tuple[str, ...] | list[str]) -> Response | None:
    """None when the caller may read every pattern; else the 401/403 to answer."""
    if not current_runtime().authority.read_required:
        return None
    grant = current_grant()
    if grant is None:
        return error_response(401, "a read token is required", None, {"WWW-Authenticate": "Bearer"})
    for pattern in patterns:
        if not grant.can_read(pattern):
            return error_response(403, f"this token may not read {pattern!r}", {"channel": pattern})
    return None


def check_publish(channel: str) -> Response | None:
    """None when the caller may publish to ``channel``; else the 401/403 to answer."""
    if not current_runtime().authority.publish_required:
        return None
    grant = current_grant()
    if grant is None:
        return error_response(
            401, "a publish token is required", None, {"WWW-Authenticate": "Bearer"}
        )
    if not grant.can_publish(channel):
        return error_response(
            403, f"this token may not publish to {channel!r}", {"channel": channel}
        )
    return None


def may_read(runtime: Site, channel: str) -> bool:
    """True when the caller may read ``channel`` (listings and dashboards filter with it)."""
    if not runtime.authority.read_required:
        return True
    grant = current_grant()
    return grant is not None and grant.can_read(channel)


async def _security_headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.content_type and response.content_type.startswith("text/html"):
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Frame-Options", "DENY")
    return response


@blueprint.get("/login")
async def login_form() -> tuple[str, int, dict[str, str]]:
    """The sign-in form (an HTML form with a ``token`` input)."""
    html = _login_page(safe_next(request.args.get("next")), error=None)
    return html, 200, {"Content-Type": "text/html; charset=utf-8"}


@blueprint.post("/login")
async def login() -> ResponseReturnValue:
    """Check the token; on success set the session cookie and go to ``next``."""
    form = await request.form
    target = safe_next(form.get("next"))
    client = request.remote_addr or "-"
    guard = _guard()
    wait_s = guard.throttle.wait_s(client)
    if wait_s > 0:
        _log_throttled(client, wait_s)
        error = f"Too many failed sign-ins: try again in {_seconds(wait_s)} s."
        return _login_answer(target, error, 429, {"Retry-After": _seconds(wait_s)})
    grant = current_runtime().authority.grant_for(form.get("token", ""))
    if grant is None:
        guard.throttle.failed(client)
        log.warning("auth failure: login refused client=%s", client)
        return _login_answer(target, "Unknown token.", 401)
    await sign_in(grant, read_only=False)
    log.info("login grant=%s client=%s", grant.id, client)
    return redirect(target)


async def sign_in(grant: Grant, *, read_only: bool) -> None:
    """Open a server-side session for ``grant`` and set its cookie on this response."""
    session_id = await _guard().sessions.create(session_value(grant, read_only=read_only))
    login_user(AuthUser(session_id), remember=True)


def session_store() -> SessionStore:
    """This app's session store (kiosk codes live there too)."""
    return _guard().sessions


def failure_throttle() -> FailureThrottle:
    """The per-address throttle of wrong tokens (and wrong kiosk codes)."""
    return _guard().throttle


def _login_answer(
    target: str, error: str, status: int, headers: dict[str, str] | None = None
) -> tuple[str, int, dict[str, str]]:
    return (
        _login_page(target, error),
        status,
        {"Content-Type": "text/html; charset=utf-8", **(headers or {})},
    )


def _login_page(target: str, error: str | None) -> str:
    template = current_runtime().renderer.env.get_template("login.html")
    return template.render(next=target, error=error)


@blueprint.post("/logout")
async def logout() -> ResponseReturnValue:
    """End the session on the server (every gateway) and forget the cookie."""
    session_id = await _session_id()
    if session_id is not None:
        await _guard().sessions.revoke(session_id)
    logout_user()
    return redirect("/login")
