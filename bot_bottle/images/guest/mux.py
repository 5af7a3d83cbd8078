"""Many TCP connections over the one byte stream of the microVM's host channel.

The guest has no network device; its only way out is one virtio serial port that QEMU
carries to a host Unix socket. In the guest, `python3 mux.py guest DEVICE PORT...`
listens on `127.0.0.1:PORT` (the same proxy and git-gate ports the other backends
give the agent) and carries each accepted connection as a stream of frames; on the
host, `Mux` with an `opener` connects each stream to the sidecar socket for its port.
A port the host does not map is refused (its stream closed at once): the host
decides where every stream may go, never the guest.

Frame: stream id (u32), kind (u8), payload length (u16), payload. OPEN carries the
port, DATA bytes (at most 4 KiB: larger guest writes to the port stalled here), EOF
that one direction ended (the receiver shuts its socket's write side). There is no
per-stream flow control yet: a frame is written to its socket before the next is read,
so a sidecar that stops reading stalls every stream (head-of-line blocking).

Standard library only: the guest runs it on the root image's python3.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable

OPEN, DATA, EOF = 1, 2, 3
HEADER = struct.Struct(">IBH")
# Stream ids: the guest numbers the streams it opens from 1, the host from HOST_FIRST,
# so the two never collide. The host opens only SERVICE_PORT (`bot-bottle exec` and the
# agent's terminal size: images/guest/exec_service.py), a port no sidecar has.
HOST_FIRST = 1 << 31
SERVICE_PORT = 0
CHUNK = 4096
READY = "/run/bot-bottle/mux.ready"
SERVICE = "/run/bot-bottle/exec_service.py"


class Mux:
    """One end of the channel: `read`/`write` move raw bytes on it; `opener` (host
    side) turns a guest's OPEN into a socket, or None to refuse it."""

    def __init__(
        self,
        read: Callable[[int], bytes],
        write: Callable[[bytes], int],
        opener: Callable[[int], socket.socket | None] | None = None,
        first: int = 1,
    ) -> None:
        self._read, self._write, self._opener = read, write, opener
        self._lock = threading.Lock()
        self._streams: dict[int, socket.socket] = {}
        self._ended: dict[int, int] = {}
        self._next = first
        self._host = first >= HOST_FIRST

    def send(self, sid: int, kind: int, payload: bytes = b"") -> None:
        with self._lock:
            for i in range(0, max(len(payload), 1), CHUNK):
                part = payload[i : i + CHUNK]
                buf = memoryview(HEADER.pack(sid, kind, len(part)) + part)
                while buf:
                    buf = buf[self._write(bytes(buf)) :]

    def add(self, conn: socket.socket, port: int) -> None:
        """A guest connection to `port`: announce it and pump it."""
        with self._lock:
            sid, self._next = self._next, self._next + 1
            self._streams[sid] = conn
        self.send(sid, OPEN, str(port).encode())
        threading.Thread(target=self._pump, args=(sid, conn), daemon=True).start()

    def _pump(self, sid: int, conn: socket.socket) -> None:
        try:
            while data := conn.recv(65536):
                self.send(sid, DATA, data)
        except OSError:
            pass
        self.send(sid, EOF)
        self._end(sid)

    def _end(self, sid: int) -> None:
        with self._lock:
            self._ended[sid] = self._ended.get(sid, 0) + 1
            done = self._ended[sid] >= 2
            conn = self._streams.pop(sid, None) if done else self._streams.get(sid)
        if done and conn is not None:
            conn.close()

    def _exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            got = self._read(n - len(buf))
            if not got:
                raise EOFError
            buf += got
        return buf

    def serve(self) -> None:
        """Read frames until the channel ends."""
        try:
            while True:
                sid, kind, length = HEADER.unpack(self._exact(HEADER.size))
                payload = self._exact(length) if length else b""
                self._frame(sid, kind, payload)
        except (EOFError, OSError):
            return

    def _frame(self, sid: int, kind: int, payload: bytes) -> None:
        if kind == OPEN:
            if (sid >= HOST_FIRST) == self._host or sid in self._streams:
                return  # the peer opens new streams in its own range only (see HOST_FIRST)
            # The guest is untrusted: a port that does not parse maps to nothing.
            port = int(payload) if payload.isdigit() and len(payload) <= 5 else -1
            conn = self._opener(port) if self._opener else None
            if conn is None:
                self.send(sid, EOF)
                return
            with self._lock:
                self._streams[sid] = conn
            threading.Thread(target=self._pump, args=(sid, conn), daemon=True).start()
            return
        conn = self._streams.get(sid)
        if conn is None:
            return
        try:
            if kind == DATA:
                conn.sendall(payload)
            elif kind == EOF:
                conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        if kind == EOF:
            self._end(sid)


def guest(device: str, ports: list[int]) -> None:
    fd = os.open(device, os.O_RDWR)
    mux = Mux(lambda n: os.read(fd, n), lambda b: os.write(fd, b), start_service)
    for port in ports:
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("127.0.0.1", port))
        lsock.listen(4096)
        threading.Thread(target=_accept, args=(mux, lsock, port), daemon=True).start()
    with open(READY, "w") as f:
        f.write("ready\n")
    mux.serve()


def start_service(port: int) -> socket.socket | None:
    """A stream the host opened: SERVICE_PORT gets a fresh root service process (this
    forwarder runs as root; the agent has no way to reach the service), anything else
    is refused."""
    if port != SERVICE_PORT:
        return None
    ours, theirs = socket.socketpair()
    with theirs:
        proc = subprocess.Popen([sys.executable, "-I", "-S", SERVICE], stdin=theirs.fileno(),
                                stdout=subprocess.DEVNULL)  # fmt: skip
    threading.Thread(target=proc.wait, daemon=True).start()
    return ours


def _accept(mux: Mux, lsock: socket.socket, port: int) -> None:
    while True:
        conn, _ = lsock.accept()
        mux.add(conn, port)


if __name__ == "__main__" and sys.argv[1:2] == ["guest"]:
    guest(sys.argv[2], [int(p) for p in sys.argv[3:]])
