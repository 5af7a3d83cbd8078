"""The host end of a microVM's channel: listen where QEMU will connect, then carry
each stream the guest opens to the sidecar socket mapped to its port (and refuse any
other port). The framing is `images/guest/mux.py`, the same code the guest runs."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from bot_bottle.images.guest.mux import Mux
from bot_bottle.unix_socket import connect as connect_unix


def opener(routes: Mapping[int, Path]) -> Callable[[int], socket.socket | None]:
    """Connects a guest's stream for `port` to the sidecar socket mapped to it; None
    (the stream is refused) for any other port or a sidecar that is gone."""

    def open_port(port: int) -> socket.socket | None:
        target = routes.get(port)
        if target is None:
            return None
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            connect_unix(conn, target)
        except OSError:
            conn.close()
            return None  # a dead sidecar: the guest's connection closes (fail closed)
        return conn

    return open_port


def serve_connected(conn: socket.socket, routes: Mapping[int, Path]) -> threading.Thread:
    """Serve the channel on `conn`, the host's end of a socket pair whose other end
    QEMU holds (a bottle's channel has no path anyone else could connect to)."""

    def serve() -> None:
        with conn:
            Mux(conn.recv, conn.send, opener(dict(routes))).serve()

    thread = threading.Thread(target=serve, daemon=True, name="bb-vm-channel")
    thread.start()
    return thread


class HostChannel:
    """Listens on `path` (0600, in a directory the caller keeps private) before QEMU
    starts; `routes` maps a guest loopback port to a host Unix socket."""

    def __init__(self, path: Path, routes: Mapping[int, Path]) -> None:
        self.path = path
        self.routes = dict(routes)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(str(path))
        os.chmod(path, 0o600)
        self._sock.listen(1)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            qemu, _ = self._sock.accept()
        except OSError:
            return
        with qemu:
            Mux(qemu.recv, qemu.send, opener(self.routes)).serve()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()
