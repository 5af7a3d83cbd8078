"""An exclusive `flock` on a lock file, waited for up to a timeout.

What `filelock.FileLock` gave the state store (the same `flock` on the same files, so
either side of an upgrade excludes the other), without its import on every launch: it
pulls in `logging` and a dozen modules, a few ms of `run`'s start-up.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from bot_bottle.errors import StateError

POLL_S = 0.01


@contextlib.contextmanager
def file_lock(path: Path, timeout: float) -> Iterator[None]:
    """Hold `path` locked (created 0600 if missing); `StateError` after `timeout` s."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StateError(
                        f"{path} stayed locked for {timeout:.0f} s",
                        "another bot-bottle command holds it; try again when it is done",
                    ) from None
                time.sleep(POLL_S)
        yield
    finally:
        os.close(fd)  # closing drops the lock
