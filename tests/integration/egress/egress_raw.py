"""Raw clients for attacking the egress: a CONNECT tunnel, HTTP/2 with validation off,
and a recording TCP server that logs every byte it receives (DNS, raw TCP, ...)."""

from __future__ import annotations

import base64
import os
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
from egress_harness import Egress


def proxy_addr(eg: Egress) -> tuple[str, int]:
    host, _, port = eg.address.rpartition(":")
    return host.strip("[]"), int(port)


def open_tunnel(eg: Egress, host: str, port: int) -> tuple[socket.socket, bytes]:
    """CONNECT host:port through the egress; returns the socket and the proxy's answer."""
    raw = socket.create_connection(proxy_addr(eg), timeout=10)
    raw.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = raw.recv(4096)
        if not chunk:
            break
        head += chunk
    return raw, head


def tls_tunnel(eg: Egress, host: str, port: int, alpn: list[str] | None = None) -> ssl.SSLSocket:
    raw, head = open_tunnel(eg, host, port)
    assert b" 200 " in head, head
    ctx = ssl.create_default_context(cafile=str(eg.ca))
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx.wrap_socket(raw, server_hostname=host)


def websocket(eg: Egress, host: str, port: int) -> ssl.SSLSocket:
    """A WebSocket on `/ws` of host:port through the egress (CONNECT, TLS, upgrade),
    past the 101: frames may follow."""
    tls = tls_tunnel(eg, host, port)
    key = base64.b64encode(os.urandom(16)).decode()
    tls.sendall(
        f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += tls.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return tls


def read_until_closed(sock: socket.socket, timeout: float = 5) -> bytes:
    """Everything the peer sends until it closes (or `timeout` passes quietly)."""
    sock.settimeout(timeout)
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except (TimeoutError, OSError):
        pass
    return out


def is_closed(sock: socket.socket, timeout: float = 5) -> bool:
    """True once the peer closed the connection within `timeout` (data is drained)."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except TimeoutError:
        return False
    except OSError:
        return True
    return False


@dataclass
class H2Result:
    status: int | None = None
    reset: bool = False
    closed: bool = False
    body: bytes = b""


def h2_request(
    tls: ssl.SSLSocket,
    headers: list[tuple[bytes, bytes]],
    body: bytes = b"",
    trailers: list[tuple[bytes, bytes]] | None = None,
    timeout: float = 10,
) -> H2Result:
    """One HTTP/2 request with every client-side header check off, so malformed fields
    reach the proxy byte for byte."""
    cfg = h2.config.H2Configuration(
        client_side=True, validate_outbound_headers=False, normalize_outbound_headers=False,
        validate_inbound_headers=False, header_encoding=None,
    )  # fmt: skip
    conn = h2.connection.H2Connection(cfg)
    conn.initiate_connection()
    end = not body and not trailers
    conn.send_headers(1, headers, end_stream=end)
    if body:
        conn.send_data(1, body, end_stream=not trailers)
    if trailers:
        conn.send_headers(1, trailers, end_stream=True)
    tls.sendall(conn.data_to_send())
    res = H2Result()
    tls.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = tls.recv(65536)
        except (TimeoutError, OSError):
            res.closed = True
            break
        if not data:
            res.closed = True
            break
        try:
            events = conn.receive_data(data)
        except Exception:
            res.closed = True
            break
        done = False
        for ev in events:
            if isinstance(ev, h2.events.ResponseReceived):
                res.status = int(dict(ev.headers)[b":status"])
            elif isinstance(ev, h2.events.DataReceived):
                res.body += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, 1)
            elif isinstance(ev, h2.events.StreamEnded | h2.events.StreamReset):
                res.reset = isinstance(ev, h2.events.StreamReset)
                done = True
            elif isinstance(ev, h2.events.ConnectionTerminated):
                res.closed = done = True
        tls.sendall(conn.data_to_send())
        if done:
            break
    return res


def h2_head(
    host: str, port: int, path: str, method: str = b"GET", extra: list[tuple[bytes, bytes]] = ()
) -> list[tuple[bytes, bytes]]:
    m = method if isinstance(method, bytes) else method.encode()
    return [
        (b":method", m),
        (b":scheme", b"https"),
        (b":authority", f"{host}:{port}".encode()),
        (b":path", path.encode()),
        *extra,
    ]


@dataclass
class Recorder:
    """A TCP server that records every byte each connection sends, and answers `reply`."""

    host: str
    port: int = 0
    reply: bytes = b""
    received: list[bytes] = field(default_factory=list)
    sock: socket.socket | None = None

    def start(self) -> Recorder:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(16)
        self.port = s.getsockname()[1]
        self.sock = s
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        assert self.sock is not None
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        idx = len(self.received)
        self.received.append(b"")
        conn.settimeout(10)
        try:
            while data := conn.recv(65536):
                self.received[idx] += data
                if self.reply:
                    conn.sendall(self.reply)
        except OSError:
            pass
        finally:
            conn.close()

    def all_bytes(self) -> bytes:
        return b"".join(self.received)

    def stop(self) -> None:
        if self.sock is not None:
            self.sock.close()
