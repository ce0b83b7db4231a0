"""A webhook listener for alert tests against real servers, and the check of what it received.

:class:`WebhookListener` is a threaded HTTP server on a port chosen before
it starts (so a server can be configured to POST to it while it is still
down). :func:`check_deliveries` is the promise of issue 14.3 as an
assertion: every alert reached the listener at least once, and every copy
carried that alert's own ``Idempotency-Key``.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import httpx

from tests.support.server import free_port


class WebhookListener:
    """Records ``(Idempotency-Key, JSON body)`` per POST and answers 200, once started."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with listener._lock:
                    listener.received.append((self.headers.get("Idempotency-Key", ""), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def keys(self) -> set[str]:
        with self._lock:
            return {key for key, _body in self.received}

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def idempotency_key(line_id: str, rule_name: str) -> str:
    """The key every POST of the alert that ``rule_name`` raised on the line ``line_id`` carries."""
    return f"{line_id}:{quote(rule_name, safe='')}"


def alerted_lines(url: str, channel: str) -> list[str]:
    """The line id of each alert on the notify ``channel`` (acknowledgements left out)."""
    response = httpx.get(f"{url}/api/channels/{channel}/events?limit=1000", timeout=30)
    assert response.status_code == 200, response.text
    events = response.json()["events"]
    return [
        e["data"]["key"].rsplit(".", 1)[1]
        for e in events
        if "acknowledged" not in e["data"].get("tags", [])
    ]


def check_deliveries(
    alerted: list[str], received: list[tuple[str, dict[str, Any]]], rule_name: str
) -> None:
    """Each alert (its line id in ``alerted``) received at least once, copies under its key only.

    ``received`` is :attr:`WebhookListener.received` of a ``format = "json"`` webhook.
    """
    expected = {idempotency_key(line_id, rule_name) for line_id in alerted}
    bodies: dict[str, dict[str, Any]] = {}
    for key, body in received:
        assert key == idempotency_key(body["id"], rule_name), f"{key} carried {body['id']}"
        assert key in expected, f"a webhook for no alert: {key}"
        assert bodies.setdefault(key, body) == body, f"two different bodies under {key}"
    assert set(bodies) == expected, f"never delivered: {sorted(expected - set(bodies))}"
