"""The `bwrap` processes a sandbox orphans, brought back to the launcher and reaped.

With `--unshare-pid`, bwrap forks the new PID namespace's init and exits as soon as
that init reports the sandbox's exit status, before the init itself has gone: the
init is orphaned. Where the host's pid 1 does not reap (a container's init often does
not), every sandbox left such a `<defunct> bwrap` behind for good (two per `run`: the
probe and the agent's). The launcher makes itself its descendants' subreaper, so an
orphan comes back to it, and reaps them once each sandbox has ended.

Only a namespace init (a child whose innermost pid is 1) is reaped here: a direct child
that another thread waits for is never taken from it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
from collections.abc import Iterator
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
REAP_WAIT_S = 2.0
"""How long an orphaned init may take to exit: it is exiting already."""


@functools.cache
def adopt() -> None:
    """Make this process the subreaper of its descendants (once; if the kernel refuses,
    orphans go to pid 1 as before)."""
    import ctypes  # only launchers that run a sandbox pay for it

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


@contextlib.contextmanager
def reaping(wait: bool = True) -> Iterator[None]:
    """Around one sandbox's run: its orphaned init is reaped once it returns (or, with
    `wait=False`, if it is gone already: a later `reap` collects it)."""
    adopt()
    try:
        yield
    finally:
        reap(REAP_WAIT_S if wait else 0.0)


def namespace_inits() -> list[int]:
    """Our children that are the init (pid 1) of a PID namespace below ours."""
    found = []
    with contextlib.suppress(OSError):
        for task in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError):
                for pid in Path(f"/proc/self/task/{task}/children").read_text().split():
                    if _innermost_pid(pid) == ("1", True):
                        found.append(int(pid))
    return found


def _innermost_pid(pid: str) -> tuple[str, bool]:
    """(innermost pid, whether the process is in a nested PID namespace)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                ids = line.split()[1:]
                return ids[-1], len(ids) > 1
    except OSError:
        pass
    return "", False


def reap(wait: float = REAP_WAIT_S) -> list[int]:
    """Wait (up to `wait` s each) for every orphaned namespace init and reap it; the
    pids reaped."""
    reaped = []
    for pid in namespace_inits():
        with contextlib.suppress(OSError):
            fd = os.pidfd_open(pid)
            try:
                select.select([fd], [], [], wait)
            finally:
                os.close(fd)
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                reaped.append(pid)
    return reaped
