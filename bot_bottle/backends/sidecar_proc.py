"""Sidecar processes on the host: started, awaited by their READY line, stopped.

Two ways to start the egress sidecar, same result (a process in its own session,
listening on the bottle's Unix socket, credentials only in its environment):
- cold: spawn `python -m bot_bottle egress serve ...` (pays the ~0.7 s mitmproxy import);
- warm: ask the egress zygote (`zygote.py`), a pre-imported process, to fork one.
Readiness is the READY line, read with a deadline; never a sleep.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bot_bottle.backends.base import Cmd, Executor
from bot_bottle.errors import BotBottleError

READY_TIMEOUT = 30.0


class SidecarError(BotBottleError):
    """A sidecar did not become ready."""


@dataclass(frozen=True)
class EgressRequest:
    """One bottle's egress sidecar. `env` carries the credential slots: it is passed as
    the sidecar's environment and nowhere else (not logged, not written)."""

    routes: Path
    socket: Path
    audit_log: Path
    confdir: Path
    log: Path
    env: dict[str, str]

    def __repr__(self) -> str:
        return f"EgressRequest(socket={self.socket}, slots={sorted(self.env)})"

    def argv(self) -> tuple[str, ...]:
        return (
            sys.executable, "-m", "bot_bottle", "egress", "serve",
            "--routes", str(self.routes), "--listen", self.listen,
            "--audit-log", str(self.audit_log), "--confdir", str(self.confdir),
        )  # fmt: skip

    @property
    def listen(self) -> str:
        """Relative to the sidecar's cwd (the sockets dir): state dirs can be deep, and a
        Unix socket path is limited to 107 bytes."""
        return f"unix:{self.socket.name}"

    def process_env(self) -> dict[str, str]:
        base = {k: os.environ[k] for k in ("PATH", "LANG", "TZ") if k in os.environ}
        return {**base, "HOME": str(self.confdir), **self.env}


@dataclass(frozen=True)
class SidecarHandle:
    name: str
    pid: int
    socket: Path
    mode: str  # cold | warm


def wait_ready(fd: int, deadline: float, name: str = "egress sidecar") -> str:
    """Read from `fd` until a `READY ...` line; return it. Raise on EOF or timeout."""
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    buf = b""
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SidecarError(f"{name} did not report READY in time")
            if not sel.select(left):
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                raise SidecarError(f"{name} exited before it was ready")
            buf += chunk
            for line in buf.split(b"\n")[:-1]:
                if line.startswith(b"READY"):
                    return line.decode()
    finally:
        sel.close()


def spawn_sidecar(
    name: str, cmd: Cmd, log: Path, socket: Path, executor: Executor
) -> SidecarHandle:
    """Start a sidecar in its own session (so stopping it stops all it started), its
    stderr appended to `log` (0600: it may name hosts and refs), and wait for its READY
    line. On failure it is killed and the error carries the log's last lines."""
    log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        proc = executor.spawn(cmd, stdout=subprocess.PIPE, stderr=log_fd, new_session=True)
    finally:
        os.close(log_fd)
    assert proc.stdout is not None
    try:
        wait_ready(proc.stdout.fileno(), time.monotonic() + READY_TIMEOUT, name)
    except SidecarError as e:
        kill_group(proc.pid)
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        detail = "".join(f"\n    {line}" for line in tail)
        raise SidecarError(f"{e.message}{detail}", "`bot-bottle doctor`") from None
    return SidecarHandle(name, proc.pid, socket, "cold")


def start_egress_cold(req: EgressRequest, executor: Executor) -> SidecarHandle:
    req.confdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    cmd = Cmd(req.argv(), env=req.process_env(), cwd=str(req.socket.parent))
    return spawn_sidecar("egress", cmd, req.log, req.socket, executor)


def start_egress(req: EgressRequest, executor: Executor, zygote: Path | None) -> SidecarHandle:
    """Warm through the zygote at `zygote` when one answers, else cold."""
    if zygote is not None and zygote.exists():
        from bot_bottle.backends import zygote as zy

        try:
            return zy.request_egress(zygote, req)
        except (OSError, SidecarError):
            pass  # a stale zygote socket: start cold instead
    return start_egress_cold(req, executor)


def kill_group(pid: int, sig: int = signal.SIGTERM) -> None:
    """Signal the sidecar's whole session (it leads its own process group)."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as dead.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True
