"""Boot a VM once and watch its serial console: when the marker appeared, what the
command's exit status was, and what QEMU said if it failed (its stderr shares the
stream). A VM that misses the deadline is killed with its process group."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass

from bot_bottle.backends.microvm.qemu import EXIT_PREFIX, MARKER, VmConfig, argv
from bot_bottle.executor import Cmd, Executor

# QEMU inherits nothing of the caller's environment but a PATH.
_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


@dataclass(frozen=True)
class Boot:
    """One boot's outcome. `marker_s` is None when the guest never reached it."""

    marker_s: float | None
    total_s: float
    timed_out: bool
    returncode: int | None
    guest_exit: int | None
    output: str

    def tail(self, lines: int = 4) -> str:
        kept = [ln.strip() for ln in self.output.splitlines() if ln.strip()]
        return " | ".join(kept[-lines:])


def run(
    cfg: VmConfig, executor: Executor, *, timeout: float, marker: str = MARKER,
    fds: Mapping[str, int] | None = None,
) -> Boot:  # fmt: skip
    """Boot `cfg` until QEMU exits or `timeout` seconds pass; `fds` are descriptors
    QEMU inherits by number (virtiofs sockets), closed here once it started."""
    start = time.monotonic()
    proc = executor.spawn(Cmd(argv(cfg), env=_ENV, hand_fds=dict(fds or {})),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    assert proc.stdout is not None
    out = bytearray()
    marker_s: float | None = None
    timed_out = False
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            left = start + timeout - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            if not sel.select(left):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            out += chunk
            if marker_s is None and marker.encode() in out:
                marker_s = time.monotonic() - start
    if timed_out:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    returncode = proc.wait()
    proc.stdout.close()
    text = out.decode(errors="replace").replace("\r", "")
    return Boot(marker_s, time.monotonic() - start, timed_out, returncode,
                guest_exit(text), text)  # fmt: skip


def guest_exit(console: str) -> int | None:
    for line in reversed(console.splitlines()):
        if line.startswith(EXIT_PREFIX):
            try:
                return int(line.removeprefix(EXIT_PREFIX).strip())
            except ValueError:
                return None
    return None
