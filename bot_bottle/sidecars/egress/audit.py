"""The bottle's audit log: one JSON line per decision, hash-chained so tampering shows.

Each line carries `prev`, the sha256 of the previous line's text (64 zeros for the
first), so editing, inserting or deleting a line breaks the chain at that point.
Several processes (egress, git gate) append to the same file; an exclusive `flock`
around "read the last line, append" keeps the chain linear across them.
No credential value is ever written here: findings carry detector + fingerprint.

Nothing leaves unrecorded: before a request is forwarded, the egress asks `problem()`,
and refuses the request while the log could not take its record (a write failed, the
disk has less than `RESERVE` free, or the file is near its size limit). A write that
fails half-way is cut back, so the records already written stay a valid chain.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import resource
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

GENESIS = "0" * 64
# Room a request's record needs, with margin for the requests in flight beside it: a
# record is a few hundred bytes, and hundreds of requests may be in flight at once.
RESERVE = 1 << 20


def line_hash(line: str) -> str:
    """Hash of one log line as written, without its newline."""
    return hashlib.sha256(line.rstrip("\n").encode(errors="surrogateescape")).hexdigest()


def _last_line(f: TextIO) -> str:
    """The last complete line of an open file (reads only the tail)."""
    fd = f.fileno()
    size = os.fstat(fd).st_size
    if size == 0:
        return ""
    block = 4096
    pos = size
    tail = b""
    while pos > 0:
        step = min(block, pos)
        pos -= step
        tail = os.pread(fd, step, pos) + tail
        stripped = tail.rstrip(b"\n")
        if b"\n" in stripped or pos == 0:
            return stripped.rsplit(b"\n", 1)[-1].decode(errors="surrogateescape")
        block *= 2
    return ""


class AuditWriter:
    """Appends hash-chained JSON lines to one audit file; safe across threads and processes."""

    def __init__(self, path: Path | str, bottle: str = "") -> None:
        self.path = Path(path)
        self.bottle = bottle
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One os.write per line on an O_APPEND fd: each line lands whole, unbuffered.
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._reader: TextIO = open(self.path, encoding="utf-8")  # noqa: SIM115
        self._lock = threading.Lock()
        self._known_size = -1
        self._prev = GENESIS
        self._failed = ""  # why the last write failed; cleared by one that succeeds

    def problem(self) -> str:
        """Why a record might not be written now ("" when it can be)."""
        if self._failed:
            return f"the last write to the audit log failed ({self._failed})"
        try:
            st = os.fstatvfs(self._fd)
            size = os.fstat(self._fd).st_size
        except OSError as e:
            return f"the audit log cannot be examined ({e.strerror})"
        free = st.f_bavail * st.f_frsize
        if free < RESERVE:
            return f"the audit log's disk is full ({free // 1024} KiB free)"
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if limit != resource.RLIM_INFINITY and limit - size < RESERVE:
            return "the audit log is at the process's file size limit"
        return ""

    def write(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Append one record (adds `ts`, `bottle`, `kind`, `prev`); returns what was written.
        Raises OSError when it cannot, with nothing of the record left in the file."""
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                size = os.fstat(self._fd).st_size
                cut_short = False
                if size != self._known_size:
                    last = _last_line(self._reader)
                    self._prev = line_hash(last) if last else GENESIS
                    cut_short = size > 0 and os.pread(self._reader.fileno(), 1, size - 1) != b"\n"
                out: dict[str, Any] = {
                    "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    "kind": "request",
                    "bottle": self.bottle,
                }
                out.update(record)
                out["prev"] = self._prev
                line = json.dumps(out, separators=(",", ":"), sort_keys=False, default=str)
                data = (line + "\n").encode()
                if cut_short:
                    data = b"\n" + data  # after a line cut short: never glued onto it
                self._append(data, size)
                self._prev = line_hash(line)
                self._known_size = size + len(data)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        return out

    def _append(self, data: bytes, size: int) -> None:
        """Write `data` whole at the end (`size` bytes, under the lock) or not at all: a
        line cut short by a full disk would break the chain for every later record."""
        try:
            written = os.write(self._fd, data)
            if written != len(data):  # the disk filled up, or the size limit was reached
                raise OSError(errno.ENOSPC, f"only {written} of {len(data)} bytes written")
        except OSError as e:
            self._failed = e.strerror or str(e)
            self._known_size = -1
            try:
                os.ftruncate(self._fd, size)
            except OSError as cut:
                self._failed += f"; cutting the partial line back failed ({cut.strerror})"
            raise
        self._failed = ""

    def close(self) -> None:
        with self._lock:
            if self._fd < 0:
                return
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
            self._reader.close()

    def __enter__(self) -> AuditWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_audit(path: Path | str) -> Iterator[dict[str, Any]]:
    """Every record in an audit file, in order; a line that is not JSON yields `{"_bad": line}`."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                rec = None
            yield rec if isinstance(rec, dict) else {"_bad": line.rstrip("\n")}


def verify_chain(path: Path | str) -> tuple[bool, int]:
    """Check the hash chain; returns (ok, 1-based number of the first bad line, or 0).
    Bytes, not text: a line cut short inside a UTF-8 sequence is a bad line, not a crash."""
    prev = GENESIS
    with open(path, "rb") as f:
        for n, line in enumerate(f, start=1):
            raw = line.rstrip(b"\n")
            try:
                rec = json.loads(raw)
            except ValueError:
                return False, n
            if not isinstance(rec, dict) or rec.get("prev") != prev:
                return False, n
            prev = hashlib.sha256(raw).hexdigest()
    return True, 0
