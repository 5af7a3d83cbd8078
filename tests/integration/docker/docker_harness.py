"""Helpers for the docker integration tests: a fake host sidecar."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

SIDECAR_REPLY = b"HTTP/1.0 200 OK\r\nContent-Length: 17\r\n\r\nhello from egress"


class FakeSidecar:
    """A Unix-socket server standing in for the host egress: answers every connection
    with one HTTP response and records how many it saw."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.connections = 0
        self._sock = socket.socket(socket.AF_UNIX)
        self._sock.bind(str(path))
        self._sock.listen(16)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.recv(65536)
                conn.sendall(SIDECAR_REPLY)

    def close(self) -> None:
        self._sock.close()
