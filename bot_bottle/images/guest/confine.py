"""`python3 -I -S confine.py FD -- PROGRAM ARGS...`: load the seccomp filter read from
descriptor FD (no-new-privs first), then exec PROGRAM under it. Standard library only:
it runs before anything else, on both sides of a microVM.

- In the guest (`/run/bot-bottle/confine.py`), between `setpriv` and the agent's
  command (`bottle.sh`) and each `bot-bottle exec` (`exec_service.py`): the namespace
  backend's filter (`backends/namespace/seccomp.py`), from the provision disk. The guest
  kernel is the boundary, so what the other backends refuse the agent (io_uring,
  keyrings, userfaultfd, other socket families, new namespaces...) it refuses there too.
- On the host (`python -m bot_bottle.images.guest.confine`), before virtiofsd: virtiofsd
  runs as root and does what the guest's kernel asks in the shared directory; a guest
  kernel the agent had compromised could ask for a set-id file there, which a host user
  running it would run as its owner (root). Under the filter that keeps set-id modes
  out of namespace bottles (`backends/namespace/file_modes.py`) every such chmod or
  creation fails with EPERM, in virtiofsd's own threads too (a filter is inherited and
  stacks with virtiofsd's own).
"""

from __future__ import annotations

import ctypes
import os
import sys

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def load(program: bytes) -> None:
    """Install `program` (packed `struct sock_filter`s) on this thread, before exec."""
    if not program or len(program) % 8:
        raise ValueError(f"not a seccomp program: {len(program)} bytes")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")


def main(argv: list[str]) -> None:
    if len(argv) < 3 or argv[1] != "--":
        sys.exit("usage: confine FD -- PROGRAM [ARGS...]")
    try:
        with os.fdopen(int(argv[0]), "rb") as f:
            load(f.read())
    except (OSError, ValueError) as e:  # never run the program unconfined
        sys.exit(f"confine: no seccomp filter: {e}")
    os.execvp(argv[2], argv[2:])


if __name__ == "__main__":
    main(sys.argv[1:])
