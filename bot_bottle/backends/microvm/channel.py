"""The host end of a microVM's channel: listen where QEMU will connect, then carry
each stream the guest opens to the sidecar socket mapped to its port (and refuse any
other port). The framing is `images/guest/mux.py`, the same code the guest runs.
The host opens streams of its own to the guest's service port (`serve_exec`)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from bot_bottle import unix_socket
from bot_bottle.images.guest.mux import HOST_FIRST, SERVICE_PORT, Mux
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


def serve_connected(conn: socket.socket, routes: Mapping[int, Path]) -> Mux:
    """Serve the channel on `conn`, the host's end of a socket pair whose other end
    QEMU holds (a bottle's channel has no path anyone else could connect to)."""

    def write(data: bytes) -> int:
        try:
            return conn.send(data)
        except OSError:  # QEMU is gone: a stream that ends now has no one to tell
            return len(data)

    mux = Mux(conn.recv, write, opener(dict(routes)), first=HOST_FIRST)

    def serve() -> None:
        with conn:
            mux.serve()

    threading.Thread(target=serve, daemon=True, name="bb-vm-channel").start()
    return mux


@contextlib.contextmanager
def serving_exec(path: Path, mux: Mux) -> Iterator[None]:
    """While inside, each connection to the bottle's exec socket at `path` (`bot-bottle
    exec`: 0600 in the state dir, the host user's; the guest never reaches it) becomes
    a stream the host opens to the guest's service, which runs the command there
    (`images/guest/exec_service.py`)."""
    listener = unix_socket.listen(path)

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            mux.add(conn, SERVICE_PORT)

    threading.Thread(target=accept, daemon=True, name="bb-vm-exec").start()
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accept()
        listener.close()
        path.unlink(missing_ok=True)


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
            Mux(qemu.recv, qemu.send, opener(self.routes), first=HOST_FIRST).serve()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()
