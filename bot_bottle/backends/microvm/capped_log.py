"""Logs a guest can write to, kept to a bounded size on the host.

A microVM's serial console and its virtiofsd's warnings are written by what the guest
does: a guest whose kernel is the attacker's can write to its console without end, and
a file QEMU or virtiofsd wrote directly would grow until the host's disk is full. So
they write into a socket or pipe instead, and a thread of the launcher copies at most
`cap` bytes into the log file. It keeps the last `tail` bytes in memory as well, and at
the end writes a line saying how much it dropped, then the dropped part of that tail:
the end of the log, where the guest's status line is, survives any flood (and a disk
too full to write it: the launcher reads the status from memory).

(An `RLIMIT_FSIZE` on QEMU would not do: its guest memory is a memfd it must size.)
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

CAP = 8 << 20
TAIL = 64 << 10
JOIN_TIMEOUT = 5.0  # the writers are gone by then: only the last write is left to do


class Recorder:
    """Copies what arrives on `fd` (its own, closed when done) into `path`, bounded,
    and keeps the last `tail` bytes in memory as well: `tail_text` holds the end of the
    log even where the file could not be written (a full disk). It never stops
    reading, so the writer never blocks on it."""

    def __init__(self, fd: int, path: Path, cap: int = CAP, tail: int = TAIL) -> None:
        self._fd = fd
        self._path = path
        self._cap = cap
        self._tail = tail
        self._last = bytearray()
        self._thread = threading.Thread(target=self._run, name=f"log-{path.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        kept = dropped = 0
        out: BinaryIO | None = None
        try:
            with contextlib.suppress(OSError):
                out = open(self._path, "wb", buffering=0)  # noqa: SIM115 (closed below)
            while chunk := _read(self._fd):
                self._last += chunk
                del self._last[: max(0, len(self._last) - self._tail)]
                take = chunk[: max(0, self._cap - kept)] if out is not None else b""
                if take:
                    try:
                        out.write(take)  # type: ignore[union-attr]
                        kept += len(take)
                    except OSError:  # the disk is full: keep reading, write no more
                        take = b""
                        _closed(out)
                        out = None
                dropped += len(chunk) - len(take)
            if dropped and out is not None:
                # The dropped bytes that are in the kept tail, after a line saying how
                # many are not: the end of the log, where the status line is.
                end = bytes(self._last[-dropped:])
                with contextlib.suppress(OSError):
                    if dropped > len(end):
                        out.write(f"\n[bot-bottle: {dropped - len(end):,} bytes not kept: "
                                  f"past the {self._cap:,} kept of this log; its last "
                                  f"{len(end):,} follow]\n".encode())  # fmt: skip
                    out.write(end)
        finally:
            _closed(out)
            os.close(self._fd)

    def tail_text(self) -> str:
        return bytes(self._last).decode(errors="replace")

    def join(self, timeout: float = JOIN_TIMEOUT) -> None:
        self._thread.join(timeout)


def _closed(f: BinaryIO | None) -> None:
    if f is not None:
        with contextlib.suppress(OSError):
            f.close()


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 1 << 16)
    except OSError:  # e.g. ECONNRESET from a writer killed outright: its end is gone
        return b""


@dataclass(frozen=True)
class Recording:
    """The writer's descriptor and the recorder behind it."""

    fd: int
    recorder: Recorder


@contextlib.contextmanager
def socket_into(path: Path, cap: int = CAP, tail: int = TAIL) -> Iterator[Recording]:
    """A connected socket for the writer (QEMU's `-chardev socket,fd=N`), recorded
    into `path`. The caller hands `fd` on (the executor closes its copy once the writer
    started). Leaving the block waits until the writer closed its end and the log is
    complete; leaving it on an error (the writer may never have started) ends the
    recording at once instead of waiting for an end that would not come."""
    # Ours is never written to, nor shut for writing while the writer runs: QEMU reads
    # an end of input as the connection's end and would write nothing more.
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    handle = os.dup(ours.fileno())  # to end the recording with, on an error
    recorder = Recorder(ours.detach(), path, cap, tail)
    try:
        yield Recording(theirs.detach(), recorder)
    except BaseException:
        with contextlib.suppress(OSError):
            socket.socket(fileno=handle).shutdown(socket.SHUT_RDWR)
        handle = -1  # closed with the socket object above
        raise
    finally:
        if handle >= 0:
            os.close(handle)
        recorder.join()


@contextlib.contextmanager
def pipe_into(path: Path, cap: int = CAP, tail: int = TAIL) -> Iterator[int]:
    """The write end of a pipe for the writer (a daemon's stdout), recorded into
    `path`; the write end is closed on leaving, which waits until every writer's copy
    is closed (the caller stops the daemon first)."""
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
