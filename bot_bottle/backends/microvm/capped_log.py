"""Logs a guest can write to, kept to a bounded size on the host.

A microVM's serial console and its virtiofsd's warnings are written by what the guest
does: a guest whose kernel is the attacker's can write to its console without end, and
a file QEMU or virtiofsd wrote directly would grow until the host's disk is full. So
they write into a socket or pipe instead, and a thread of the launcher copies at most
`cap` bytes into the log file. Past that it keeps only the last `tail` bytes in memory,
and at the end writes a line saying how much it dropped, then that tail: the end of the
log, where the guest's status line is, survives any flood.

(An `RLIMIT_FSIZE` on QEMU would not do: its guest memory is a memfd it must size.)
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

CAP = 8 << 20
TAIL = 64 << 10
JOIN_TIMEOUT = 5.0  # the writers are gone by then: only the last write is left to do


class Recorder:
    """Copies what arrives on `fd` into `path`, bounded; `join` once the writers are
    gone (their end closed)."""

    def __init__(self, fd: int, path: Path, cap: int = CAP, tail: int = TAIL) -> None:
        self._fd = fd
        self._path = path
        self._cap = cap
        self._tail = tail
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name=f"log-{path.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        kept = 0
        tail = bytearray()
        with open(self._path, "wb", buffering=0) as out:
            while chunk := _read(self._fd):
                room = self._cap - kept
                if room > 0:
                    out.write(chunk[:room])
                    kept += min(room, len(chunk))
                    chunk = chunk[room:]
                if chunk:
                    self.dropped += len(chunk)
                    tail += chunk
                    del tail[: max(0, len(tail) - self._tail)]
            if self.dropped:
                kept_tail = len(tail)
                out.write(f"\n[bot-bottle: {self.dropped - kept_tail:,} bytes not kept: "
                          f"past the {self._cap:,} kept of this log; its last "
                          f"{kept_tail:,} follow]\n".encode())  # fmt: skip
                out.write(bytes(tail))
        os.close(self._fd)

    def join(self, timeout: float = JOIN_TIMEOUT) -> None:
        self._thread.join(timeout)


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 1 << 16)
    except OSError:  # e.g. ECONNRESET from a writer killed outright: its end is gone
        return b""


@contextlib.contextmanager
def socket_into(path: Path, cap: int = CAP, tail: int = TAIL) -> Iterator[int]:
    """A connected socket for the writer (QEMU's `-chardev socket,fd=N`), recorded
    into `path`. The caller hands it on and closes its copy; leaving the block waits
    until the writer closed its end and the log is complete."""
    # Ours is never written to, nor shut for writing: QEMU reads an end of input as
    # the connection's end and would write nothing more.
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    recorder = Recorder(ours.detach(), path, cap, tail)
    try:
        yield theirs.detach()
    finally:
        recorder.join()


@contextlib.contextmanager
def pipe_into(path: Path, cap: int = CAP, tail: int = TAIL) -> Iterator[int]:
    """The write end of a pipe for the writer (a daemon's stdout), recorded into
    `path`; the write end is closed on leaving, which waits as `socket_into`."""
    r, w = os.pipe2(os.O_CLOEXEC)
    recorder = Recorder(r, path, cap, tail)
    try:
        yield w
    finally:
        with contextlib.suppress(OSError):
            os.close(w)
        recorder.join()


def tail(path: Path, limit: int = TAIL) -> str:
    """The last `limit` bytes of a log, as text: never the whole of it."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - limit))
            return f.read(limit).decode(errors="replace")
    except OSError:
        return ""
