"""The per-user egress helper: the zygote (`zygote.py`), started on first use and reused.

Every `run` asks the helper for its bottle's egress sidecar, so only the first run after
an idle spell pays mitmproxy's import. The helper:
- is started by the first launcher that finds none (under a lock, so two launchers
  starting at once share one), in its own session, with a minimal environment: it
  outlives that launcher and must not keep a copy of its variables, which may hold
  the user's tokens;
- exits after `BOT_BOTTLE_EGRESS_HELPER_IDLE` seconds (default 1800) without a request,
  removing its socket; the sidecars it forked lead their own sessions and live on;
- is tied to the code that started it: its socket name carries a digest of bot-bottle's
  source files and interpreter, so after an upgrade or an edit a launcher never asks an
  old helper for a sidecar (the old one idles out, or `egress warm --stop` ends it);
- holds no credential: it forks before reading a request (see `zygote.py`).

`BOT_BOTTLE_EGRESS_HELPER=off` turns it off: each run then starts its sidecar cold. When
the helper cannot be started or answered, the launcher falls back to the cold path too.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import signal
import socket
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bot_bottle import unix_socket
from bot_bottle.errors import BotBottleError
from bot_bottle.executor import Cmd, Executor
from bot_bottle.sidecars.process import alive, spawn_sidecar

ENABLED_ENV = "BOT_BOTTLE_EGRESS_HELPER"
IDLE_ENV = "BOT_BOTTLE_EGRESS_HELPER_IDLE"
DEFAULT_IDLE = 1800.0
# What the helper keeps of the launcher's environment: enough to run Python and find
# its packages, nothing that could be a credential.
KEPT_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "PYTHONPATH")
SOCKET_GLOB = "egress-*.sock"


@dataclass(frozen=True)
class HelperStatus:
    """What `doctor` and `egress warm` show: whether it is on, and the live helper."""

    enabled: bool
    socket: Path
    pid: int | None
    idle: float

    @property
    def log(self) -> Path:
        return self.socket.with_suffix(".log")


def enabled() -> bool:
    return os.environ.get(ENABLED_ENV, "on").strip().lower() not in ("off", "0", "no", "false")


def idle_seconds() -> float:
    raw = os.environ.get(IDLE_ENV, "")
    if not raw:
        return DEFAULT_IDLE
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < 10**7:
        raise BotBottleError(
            f"{IDLE_ENV}={raw!r} is not a number of seconds",
            f"unset it, or set it to e.g. {int(DEFAULT_IDLE)}",
        )
    return value


def build_id() -> str:
    """A digest of the interpreter and of bot-bottle's source files (names, sizes,
    modification times): it changes whenever the code a helper would run changes."""
    pkg = Path(__file__).resolve().parents[2]
    h = hashlib.sha256(sys.executable.encode())
    for path in sorted(pkg.rglob("*.py")):
        st = path.stat()
        h.update(f"{path.relative_to(pkg)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def socket_path(run_dir: Path) -> Path:
    return run_dir / f"egress-{build_id()[:12]}.sock"


def _peer_pid(path: Path) -> int | None:
    """The pid of the process listening at `path`, or None when nothing answers. The
    helper forks a child for the connection, which sees it end at once and exits."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2.0)
    try:
        unix_socket.connect(s, path)
        creds = s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    finally:
        s.close()
    pid = int(struct.unpack("3i", creds)[0])
    return pid if pid > 0 and alive(pid) else None


def status(run_dir: Path) -> HelperStatus:
    sock = socket_path(run_dir)
    pid = _peer_pid(sock) if sock.exists() else None
    return HelperStatus(enabled(), sock, pid, idle_seconds())


@contextlib.contextmanager
def _start_lock(run_dir: Path) -> Iterator[None]:
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(run_dir / "egress-helper.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def ensure(run_dir: Path, executor: Executor) -> Path:
    """The socket of a running helper for this code, started now if there is none.
    Raises `SidecarError` (from `spawn_sidecar`) when it cannot start."""
    sock = socket_path(run_dir)
    if sock.exists() and _peer_pid(sock) is not None:
        return sock
    with _start_lock(run_dir):
        if sock.exists() and _peer_pid(sock) is not None:  # another launcher won the race
            return sock
        env = {k: os.environ[k] for k in KEPT_ENV if k in os.environ}
        argv = (sys.executable, "-m", "bot_bottle.sidecars.egress.zygote", str(sock),
                "--idle", str(idle_seconds()))  # fmt: skip
        spawn_sidecar("egress helper", Cmd(argv, env=env), sock.with_suffix(".log"), sock, executor)
    return sock


def stop_all(run_dir: Path) -> list[int]:
    """Stop every helper under `run_dir` (any build); returns the pids signalled."""
    stopped = []
    for sock in sorted(run_dir.glob(SOCKET_GLOB)):
        pid = _peer_pid(sock)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)  # its sidecars lead their own sessions
                stopped.append(pid)
        sock.unlink(missing_ok=True)
    return stopped
