"""The egress zygote: one warm, pre-imported process that forks an egress per bottle.

Importing mitmproxy costs ~0.7 s; a zygote pays it once. Credential isolation is
kept per bottle: the zygote forks *before* reading a request, so the credential
slots travel only from the launcher to the forked child over a Unix socket (mode
0600, same uid checked with SO_PEERCRED) and live only in that child's memory and
environment. The zygote itself never holds a credential, runs no event loop and no
threads (so forking it is safe), and each child leads its own session, so `stop`
and fail-closed behaviour are the same as for a cold sidecar.

Started on first use as the per-user helper (`helper.py`), or by `bot-bottle egress
warm`, as `python -m bot_bottle.sidecars.egress.zygote SOCKET [--idle SECONDS]`, which
prints `READY SOCKET` and exits after SECONDS without a request.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bot_bottle import unix_socket
from bot_bottle.sidecars.egress.request import EgressRequest
from bot_bottle.sidecars.process import SidecarError, SidecarHandle, kill_group, wait_ready


def _serve_fn() -> Any:
    """`serve`, imported (the expensive part) and warmed up (`server.warm_up`)."""
    from bot_bottle.sidecars.egress.server import serve, warm_up

    try:
        warm_up()
    except Exception as e:  # only speed is lost: each child pays the first-time costs
        print(f"egress zygote: warm-up failed: {type(e).__name__}: {e}", file=sys.stderr)
    if threading.active_count() != 1:  # forking a threaded process is not safe
        raise SystemExit("egress zygote: a thread outlived the warm-up; not forking")
    return serve


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def _read_request(conn: socket.socket) -> dict[str, Any] | None:
    """The launcher's request, or None when it hung up without one (a status probe)."""
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk and not buf:
            return None
        if not chunk:
            raise OSError("launcher closed the request")
        buf += chunk
    req = json.loads(buf)
    if not isinstance(req, dict):
        raise ValueError("request must be an object")
    return req


def _child(conn: socket.socket, serve: Any) -> int:
    """In the forked child: become the bottle's egress sidecar."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setsid()
    if _peer_uid(conn) != os.getuid():
        return 1
    req = _read_request(conn)
    if req is None:
        return 0
    log = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 2)
    os.close(log)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    env = {str(k): str(v) for k, v in req["env"].items()}
    os.environ.clear()
    os.environ.update(env)
    os.chdir(req["cwd"])
    conn.sendall(f"PID {os.getpid()}\n".encode())
    os.dup2(conn.fileno(), 1)  # serve() prints READY on stdout: it reaches the launcher
    conn.close()
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    return int(serve(req["routes"], req["listen"], req["audit_log"], req["confdir"], env))


def main(path: str, idle: float | None = None) -> int:
    serve = _serve_fn()  # the expensive import, once
    sock_path = Path(path)
    sock_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    listener = unix_socket.listen(sock_path, backlog=64)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped automatically
    ours = os.stat(sock_path).st_ino
    listener.settimeout(idle)
    print(f"READY {sock_path}", flush=True)
    while True:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            # Idle: remove our socket (unless a new helper already replaced it) and go.
            with contextlib.suppress(OSError):
                if os.stat(sock_path).st_ino == ours:
                    sock_path.unlink()
            return 0
        conn.setblocking(True)
        if os.fork() == 0:
            listener.close()
            rc = 1
            try:
                rc = _child(conn, serve)
            except Exception as e:  # the child must never return into the accept loop
                print(f"egress zygote child: {type(e).__name__}", file=sys.stderr, flush=True)
            finally:
                os._exit(rc)
        conn.close()


def request_egress(zygote: Path, req: EgressRequest, timeout: float = 30.0) -> SidecarHandle:
    """Launcher side: ask the zygote for a sidecar; return once it printed READY. The
    child says `PID n` first, so a child that dies or hangs before READY is killed."""
    req.confdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(timeout)
    try:
        unix_socket.connect(conn, zygote)
        body = {"routes": str(req.routes), "listen": req.listen, "cwd": str(req.socket.parent),
                "audit_log": str(req.audit_log), "confdir": str(req.confdir),
                "log": str(req.log), "env": req.process_env()}  # fmt: skip
        conn.sendall(json.dumps(body).encode() + b"\n")
        seen: list[str] = []
        try:
            wait_ready(conn.fileno(), time.monotonic() + timeout, "egress sidecar (warm)", seen)
        except SidecarError:
            for pid in _pids(seen):
                kill_group(pid)
            raise SidecarError(
                "egress sidecar (warm) exited before it was ready; see " + str(req.log)
            ) from None
        pids = _pids(seen)
        if not pids:
            raise SidecarError("egress zygote answered READY without a PID; see " + str(req.log))
        return SidecarHandle("egress", pids[0], req.socket, "warm")
    finally:
        conn.close()


def _pids(lines: list[str]) -> list[int]:
    return [int(line[4:]) for line in lines if line.startswith("PID ") and line[4:].isdigit()]


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        args = sys.argv[1:]
        idle_after = float(args[2]) if args[1:2] == ["--idle"] else None
        sys.exit(main(args[0], idle_after))
