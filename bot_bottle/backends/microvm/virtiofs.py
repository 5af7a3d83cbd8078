"""virtiofsd, the host side of a virtiofs share: one per shared directory (a bottle's
HOME, its workspace), started before QEMU and stopped after it. QEMU's own package
ships it (`qemu-system-common`); here it runs only as root."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from bot_bottle import unix_socket
from bot_bottle.backends.microvm import capped_log
from bot_bottle.backends.microvm.qemu import SETPRIV
from bot_bottle.backends.namespace.file_modes import compile_bpf
from bot_bottle.executor import Cmd, Executor, Process

VIRTIOFSD = "/usr/lib/qemu/virtiofsd"
_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


@contextlib.contextmanager
def serving(executor: Executor, vm: Path, tag: str, source: Path) -> Iterator[int]:
    """One virtiofsd serving `source`; yields a socket already connected to it, for
    QEMU (`-chardev socket,fd=N`), and stops virtiofsd on exit. virtiofsd is handed its
    listening socket (`--fd`), so no path is bound for anyone else to connect to and no
    path's length matters; it confines itself to `source` (its own namespaces)."""
    listener = unix_socket.listen(vm / f"{tag}.sock", backlog=1)
    log = vm / f"virtiofsd-{tag}.log"
    filter_file = vm / "virtiofsd.bpf"
    filter_file.write_bytes(compile_bpf())
    failed = False
    # Its warnings follow the guest's requests: recorded bounded, like the console.
    with capped_log.pipe_into(log) as logfd:
        with listener:
            fd = os.dup(listener.fileno())  # inherited by number: `--fd=N` is one word
            # Under `confine`'s filter: no set-id modes. Without CAP_MKNOD: no device
            # nodes. Either, made in a share by a compromised guest kernel, would be
            # root's on the host. No xattrs (the default): no file capabilities either.
            daemon = (SETPRIV, "--pdeathsig", "KILL", "--",
                      sys.executable, "-I", "-m", "bot_bottle.images.guest.confine",
                      "@fd:filter", "--",
                      VIRTIOFSD, f"--fd={fd}", "-o", f"source={source}", "-o", "cache=auto",
                      "-o", "no_posix_lock", "-o", "no_xattr", "-o", "modcaps=-mknod",
                      "-o", "log_level=warn")  # fmt: skip
            cmd = Cmd(daemon, env=_ENV, hand_fds={"listener": fd},
                      fd_files={"filter": str(filter_file)})  # fmt: skip
            proc = executor.spawn(cmd, stdout=logfd, stderr=subprocess.STDOUT)
        try:  # from here on, whatever happens, virtiofsd is stopped
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            unix_socket.connect(conn, vm / f"{tag}.sock")  # queued until virtiofsd accepts
            (vm / f"{tag}.sock").unlink(missing_ok=True)
            yield conn.detach()
        finally:
            failed = _exited(proc) and proc.wait() not in (0, -signal.SIGTERM)
            if not _exited(proc):
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
    if failed:  # its log is complete now
        said = capped_log.tail(log, 400).strip()
        print(f"bot-bottle: virtiofsd for {tag} exited {proc.wait()}: {said}", file=sys.stderr)


def _exited(proc: Process) -> bool:
    try:
        proc.wait(timeout=0)
    except subprocess.TimeoutExpired:
        return False
    return True
