"""A small, honest HTTPS upstream on 127.0.0.1:0 that records what it received.

Serves names under `example.test` with a throwaway `trustme` CA. Endpoints:
`/sse` streams events and waits for the test to say it saw the first one,
`/ws` echoes WebSocket messages, `/bytes/N` downloads N bytes, anything else answers
200 with a JSON summary.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import ssl
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import trustme

_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass
class Received:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


@dataclass
class Upstream:
    port: int
    ca: trustme.CA
    ca_path: Path
    records: list[Received] = field(default_factory=list)
    sse_seen_first: threading.Event = field(default_factory=threading.Event)
    sse_log: list[str] = field(default_factory=list)
    # Raw bytes read after a non-WebSocket 101, and every WebSocket frame (opcode, data).
    upgraded: list[bytes] = field(default_factory=list)
    ws_frames: list[tuple[int, bytes]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def last(self) -> Received:
        return self.records[-1]

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def _ws_read(sock: socket.socket | ssl.SSLSocket) -> tuple[int, bytes] | None:
    def exact(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError
            buf += chunk
        return buf

    try:
        b0, b1 = exact(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", exact(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", exact(8))[0]
        mask = exact(4) if b1 & 0x80 else b"\0\0\0\0"
        data = bytes(c ^ mask[i % 4] for i, c in enumerate(exact(n)))
    except (ConnectionError, OSError):
        return None
    return b0 & 0x0F, data


def ws_frame(opcode: int, data: bytes, mask: bytes | None = None) -> bytes:
    """One final WebSocket frame (masked when `mask` is given, as clients must)."""
    n = len(data)
    head = bytes([0x80 | opcode])
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if mask:
        return head + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(data))
    return head + data


def start_upstream(tmp: Path) -> Upstream:
    ca = trustme.CA()
    cert = ca.issue_cert("api.example.test", "other.example.test", "*.example.test", "127.0.0.1")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    ca_path = tmp / "upstream-ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    up = Upstream(port=0, ca=ca, ca_path=ca_path)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _body(self) -> bytes:
            if self.headers.get("transfer-encoding", "").lower() == "chunked":
                out = b""
                while True:
                    size = int(self.rfile.readline().strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return out
                    out += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("content-length") or 0))

        def _handle(self) -> None:
            body = self._body()
            up.records.append(Received(self.command, self.path, list(self.headers.items()), body))
            if self.path.startswith("/sse"):
                return self._sse()
            if self.path.startswith("/bytes/"):
                return self._bytes(int(self.path[7:].partition("?")[0]))
            if self.path.startswith("/ws"):
                return self._ws()
            if self.headers.get("upgrade"):
                return self._raw_upgrade()
            payload = json.dumps({"ok": True, "path": self.path, "len": len(body)}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _bytes(self, n: int) -> None:
            """`n` bytes of a download, written as fast as the client reads them."""
            self.send_response(200)
            self.send_header("content-length", str(n))
            self.end_headers()
            chunk = b"x" * 65536
            try:
                while n > 0:
                    self.wfile.write(chunk[: min(n, len(chunk))])
                    n -= len(chunk)
            except OSError:
                pass

        def _sse(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()

            def chunk(text: str) -> None:
                data = text.encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

            chunk("data: first\n\n")
            up.sse_log.append("sent-first")
            released = up.sse_seen_first.wait(10)
            up.sse_log.append("released" if released else "timeout")
            for i in range(3):
                chunk(f"data: more {i}\n\n")
            chunk("data: last\n\n")
            up.sse_log.append("sent-last")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def _ws(self) -> None:
            key = self.headers.get("sec-websocket-key", "")
            accept = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
            self.send_response(101)
            self.send_header("upgrade", "websocket")
            self.send_header("connection", "Upgrade")
            self.send_header("sec-websocket-accept", accept)
            self.end_headers()
            self.wfile.flush()
            while (frame := _ws_read(self.connection)) is not None:
                op, data = frame
                up.ws_frames.append(frame)
                if op == 8:
                    self.connection.sendall(ws_frame(8, data[:2]))
                    break
                if op in (1, 2):
                    self.connection.sendall(ws_frame(op, data))
            self.close_connection = True

        def _raw_upgrade(self) -> None:
            # Accepts any protocol switch and then echoes raw bytes, as a hostile or
            # merely permissive server would.
            self.send_response(101)
            self.send_header("upgrade", self.headers.get("upgrade", ""))
            self.send_header("connection", "Upgrade")
            self.end_headers()
            self.wfile.flush()
            self.connection.settimeout(10)
            try:
                while data := self.connection.recv(65536):
                    up.upgraded.append(data)
                    self.connection.sendall(data)
            except OSError:
                pass
            self.close_connection = True

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def get_request(self) -> tuple[socket.socket, object]:
            sock, addr = super().get_request()
            # Headers and body go out in separate writes; without this, Nagle plus
            # delayed ACK adds 40 ms to every keep-alive response.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    server = Server(("127.0.0.1", 0), Handler)
    up.port = server.server_address[1]
    up.server = server
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return up
