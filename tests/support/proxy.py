"""A TCP proxy on 127.0.0.1 that a test can cut: every connection through it drops at once.

While cut, it accepts and closes at once, as a restarting server would; ``resume()``
lets connections through again. The server behind it keeps running (and its history).
"""

from __future__ import annotations

import contextlib
import socket
import threading

BUFFER_BYTES = 65536


class CuttableProxy:
    """Forward 127.0.0.1:``port`` to 127.0.0.1:``target_port`` until cut."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._cut = False
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        """Drop every connection through the proxy and refuse new ones until ``resume``."""
        with self._lock:
            self._cut = True
            for sock in self._open:
                _close(sock)
            self._open.clear()

    def resume(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self.cut()
        _close(self._listener)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                if self._cut:
                    _close(client)
                    continue
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
                self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(BUFFER_BYTES):
            sink.sendall(data)
    _close(source)
    _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
