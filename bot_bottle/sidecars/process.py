"""Sidecar processes on the host: started, awaited by their READY line, stopped.

Every sidecar (egress cold or through its zygote, the git gate, the zygote itself)
is a process in its own session whose readiness is one `READY ...` line, read here
with a deadline (`wait_ready`); never a sleep. A Docker bottle's main process reports
its readiness the same way, on the container's attached output (`pipe_from`), so
there is one wait for READY, with one timeout and one error.
"""

from __future__ import annotations

import contextlib
import os
import select
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bot_bottle.errors import BotBottleError
from bot_bottle.executor import Cmd, Executor

READY_TIMEOUT = 30.0


class SidecarError(BotBottleError):
    """A sidecar did not become ready."""


@dataclass(frozen=True)
class SidecarHandle:
    name: str
    pid: int
    socket: Path
    mode: str  # cold | warm


def wait_ready(
    fd: int,
    deadline: float,
    name: str = "egress sidecar",
    seen: list[str] | None = None,
    marker: bytes = b"READY",
) -> str:
    """Read from `fd` until a line starting with `marker`; return it. Raise on EOF or
    timeout. The complete lines read before it are appended to `seen` (e.g. the
    zygote's `PID`)."""
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
            *lines, buf = (buf + chunk).split(b"\n")
            for line in lines:
                if line.startswith(marker):
                    return line.decode()
                if seen is not None:
                    seen.append(line.decode(errors="replace"))
    finally:
        sel.close()


def pipe_from(chunks: Iterable[bytes], name: str) -> int:
    """The read end of a pipe that a daemon thread fills from `chunks` (a stream with
    no descriptor of its own, e.g. a container's attached stdout) and closes when they
    end, so `wait_ready` sees their end as EOF. The caller closes the read end (and
    should end `chunks`: the thread then stops at its next read or write)."""
    r, w = os.pipe()

    def pump() -> None:
        try:
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(w, view) :]
        # The reader closed its end (EPIPE), or the stream was closed under us
        # (the SDK's closed socket file raises ValueError): either way, done.
        except (OSError, ValueError):
            pass
        finally:
            os.close(w)

    threading.Thread(target=pump, name=f"ready-{name}", daemon=True).start()
    return r


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
    finally:
        proc.stdout.close()  # READY is all a sidecar says there
    return SidecarHandle(name, proc.pid, socket, "cold")


def kill_group(pid: int, sig: int = signal.SIGTERM) -> None:
    """Signal the sidecar's whole session (it leads its own process group)."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


STOP_TIMEOUT = 5.0
"""How long a sidecar may take to finish after SIGTERM (its last audit records, its
socket) before it is killed outright; it takes a few ms."""


@dataclass
class Stopping:
    """Sidecars told to stop (`begin_stop`), each with a pidfd to wait on: the launcher
    does its other cleanup meanwhile, then `wait`s until every one is gone."""

    handles: list[tuple[int, int]]  # (pid, pidfd or -1)
    deadline: float

    def wait(self) -> None:
        """Return once each is gone: an event wait on its pidfd (never a poll), SIGKILL
        for one still there at the deadline. One that is our child is reaped."""
        handles, self.handles = self.handles, []
        for pid, fd in handles:
            if fd >= 0:
                try:
                    left = max(0.0, self.deadline - time.monotonic())
                    if not select.select([fd], [], [], left)[0]:
                        kill_group(pid, signal.SIGKILL)
                        select.select([fd], [], [], 1.0)
                finally:
                    os.close(fd)
            _reap(pid)


def begin_stop(pids: Iterable[int], timeout: float = STOP_TIMEOUT) -> Stopping:
    """SIGTERM each sidecar's session; `Stopping.wait` then waits for them."""
    handles = []
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)  # before the signal: a pid reused meanwhile is never hit
        except ProcessLookupError:
            continue  # already gone
        except OSError:
            fd = -1  # no pidfds here: signal, and reap what is ours
        kill_group(pid)
        handles.append((pid, fd))
    return Stopping(handles, time.monotonic() + timeout)


def stop_all(pids: Iterable[int], timeout: float = STOP_TIMEOUT) -> None:
    """Stop these sidecars' sessions and return once each is gone (its audit records
    written): `begin_stop`, then `Stopping.wait`."""
    begin_stop(pids, timeout).wait()


def _reap(pid: int) -> None:
    """Collect `pid` if it is our (exited) child; another's child is its parent's."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0 if not alive(pid) else os.WNOHANG)


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
