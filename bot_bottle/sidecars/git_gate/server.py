"""The gate's HTTP front: smart HTTP for the bottle's remotes, over TCP or a Unix
socket (which the backend binds into the bottle and relays to 127.0.0.1:<port>).

Only the smart protocol's three endpoints are served, by `git http-backend` as a CGI
against the remote's mirror; the mirror is refreshed from upstream before every ref
advertisement, so a clone, fetch or push always starts from upstream's current refs.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import socketserver
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote

from bot_bottle.sidecars import lifeline
from bot_bottle.sidecars.git_gate.config import GateConfig
from bot_bottle.sidecars.git_gate.git import GitFailed
from bot_bottle.sidecars.git_gate.mirror import Mirror
from bot_bottle.sidecars.git_gate.upstream import hook_env, upstream_env

_PATH = re.compile(
    r"^/([A-Za-z0-9][A-Za-z0-9._-]*)\.git/(info/refs|git-upload-pack|git-receive-pack)$"
)
_SERVICES = ("git-upload-pack", "git-receive-pack")
MAX_BODY = 2 << 30


class Gate:
    """The mirrors and what the HTTP handler needs to serve them."""

    def __init__(
        self,
        config: GateConfig,
        config_path: Path,
        state: Path,
        audit_log: Path | None,
        host_env: Mapping[str, str],
    ) -> None:
        self.root = state / "mirrors"
        self.mirrors: dict[str, Mirror] = {}
        for remote in config.remotes:
            hook_args: tuple[str, ...] = (
                "--config",
                str(config_path.resolve()),
                "--remote",
                remote.name,
            )
            if audit_log is not None:
                hook_args += ("--audit-log", str(audit_log.resolve()))
            env = upstream_env(remote, host_env)
            self.mirrors[remote.name] = Mirror(self.root, remote, env, hook_args)

    def prepare(self) -> None:
        """Create every mirror and fetch it once, so the first clone is fast; an
        unreachable upstream is reported, not fatal (the next request retries)."""
        for m in self.mirrors.values():
            m.ensure()
            try:
                m.refresh()
            except GitFailed as e:
                log(f"{m.remote.name}: initial fetch failed: {e.stderr.strip()}")


def log(msg: str) -> None:
    print(f"git-gate: {msg}", file=sys.stderr, flush=True)


def _read_chunked(rfile: io.BufferedIOBase, out: IO[bytes]) -> None:
    total = 0
    while True:
        size_line = rfile.readline(1024)
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while rfile.readline(1024).strip():
                pass  # trailers
            return
        total += size
        if total > MAX_BODY:
            raise ValueError("request body too large")
        out.write(rfile.read(size))
        rfile.readline(16)


class GateHandler(BaseHTTPRequestHandler):
    server_version = "bot-bottle-git-gate"
    gate: Gate  # set on the subclass made by `make_server`

    def address_string(self) -> str:
        # Unix-socket peers have no address tuple.
        addr: Any = self.client_address
        return str(addr[0]) if isinstance(addr, tuple) and addr else "unix"

    def log_message(self, format: str, *args: Any) -> None:
        log(f"{self.command} {self.path.split('?', 1)[0]} {format % args}")

    def _plain(self, status: int, text: str) -> None:
        body = (text.rstrip("\n") + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        path, _, query = self.path.partition("?")
        m = _PATH.match(unquote(path))
        mirror = self.gate.mirrors.get(m.group(1)) if m else None
        if m is None or mirror is None:
            self._plain(404, "git-gate: no such remote (the gate serves the bottle's remotes only)")
            return
        endpoint = m.group(2)
        if endpoint == "info/refs":
            service = dict(p.partition("=")[::2] for p in query.split("&")).get("service")
            if self.command != "GET" or service not in _SERVICES:
                self._plain(403, "git-gate: only the smart HTTP protocol is served")
                return
            with mirror.lock:
                try:
                    mirror.refresh()
                except GitFailed as e:
                    self._plain(502, f"git-gate: cannot reach upstream: {e.stderr.strip()}")
                    return
                self._cgi(mirror, endpoint, query)
        elif self.command != "POST":
            self._plain(405, "git-gate: POST expected")
        elif endpoint == "git-receive-pack":
            with mirror.lock:  # the hook's "--not --all" must not move under it
                self._cgi(mirror, endpoint, query)
        else:
            self._cgi(mirror, endpoint, query)

    def _cgi(self, mirror: Mirror, endpoint: str, query: str) -> None:
        # The body goes to a file first: http-backend needs its length, git sends big
        # pushes chunked, and a file as stdin cannot deadlock against git's output.
        with tempfile.TemporaryFile() as body:
            if self.command == "POST":
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    _read_chunked(self.rfile, body)
                else:
                    n = int(self.headers.get("Content-Length", "0") or 0)
                    if n > MAX_BODY:
                        self._plain(413, "git-gate: request body too large")
                        return
                    shutil.copyfileobj(_Limited(self.rfile, n), body)
            length = body.tell()
            body.seek(0)
            env = hook_env(mirror.git.env)
            env.update(
                GIT_PROJECT_ROOT=str(mirror.path.parent),
                GIT_HTTP_EXPORT_ALL="1",
                PATH_INFO=f"/{mirror.path.name}/{endpoint}",
                REQUEST_METHOD=self.command,
                QUERY_STRING=query,
                CONTENT_TYPE=self.headers.get("Content-Type", ""),
                CONTENT_LENGTH=str(length),
                REMOTE_USER="bottle",
                REMOTE_ADDR="127.0.0.1",
                GATEWAY_INTERFACE="CGI/1.1",
            )
            if enc := self.headers.get("Content-Encoding"):
                env["HTTP_CONTENT_ENCODING"] = enc
            if proto := self.headers.get("Git-Protocol"):
                env["GIT_PROTOCOL"] = proto
            proc = subprocess.Popen(
                ["git", "http-backend"], env=env, stdin=body, stdout=subprocess.PIPE
            )
        assert proc.stdout is not None
        status, headers = _cgi_headers(proc.stdout)
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            shutil.copyfileobj(proc.stdout, self.wfile, 1 << 16)
        finally:
            proc.stdout.close()
            proc.wait()


class _Limited:
    def __init__(self, f: io.BufferedIOBase, n: int) -> None:
        self.f, self.left = f, n

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        data = self.f.read(min(self.left, size if size > 0 else 1 << 16))
        self.left -= len(data)
        return data


def _cgi_headers(out: IO[bytes]) -> tuple[int, list[tuple[str, str]]]:
    status = 200
    headers: list[tuple[str, str]] = []
    while True:
        line = out.readline(8192).rstrip(b"\r\n")
        if not line:
            return status, headers
        k, _, v = line.decode("latin-1").partition(":")
        if k.lower() == "status":
            status = int(v.strip().split()[0])
        else:
            headers.append((k.strip(), v.strip()))


class _TCP6HTTPServer(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class _UnixHTTPServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


def make_server(gate: Gate, listen: str) -> socketserver.BaseServer:
    """`HOST:PORT` (port 0 picks one) or `unix:PATH`."""
    handler = type("BoundGateHandler", (GateHandler,), {"gate": gate})
    if listen.startswith("unix:"):
        path = listen[5:]
        if os.path.exists(path):
            os.unlink(path)
        srv: socketserver.BaseServer = _UnixHTTPServer(path, handler)
        os.chmod(path, 0o600)
        return srv
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--listen: expected HOST:PORT or unix:PATH, got {listen!r}")
    cls = _TCP6HTTPServer if ":" in host else ThreadingHTTPServer
    return cls((host.strip("[]"), int(port)), handler)


def server_address(srv: socketserver.BaseServer) -> str:
    addr: Any = srv.server_address
    if isinstance(addr, str | bytes):
        return f"unix:{os.fsdecode(addr)}"
    return f"{addr[0]}:{addr[1]}"


def serve(gate: Gate, listen: str, ready: IO[str] = sys.stdout) -> None:
    """Prepare mirrors, bind, print `READY <addr>`, serve until killed."""
    gate.prepare()
    srv = make_server(gate, listen)
    print(f"READY {server_address(srv)}", file=ready, flush=True)
    log(f"serving {', '.join(gate.mirrors)} on {server_address(srv)}")
    lifeline.follow(os.environ)  # SIGTERM, which ends the gate
    srv.serve_forever()
