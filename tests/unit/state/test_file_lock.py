"""The state store's lock: excludes any other holder of the same file's `flock` (another
launcher, or an older bot-bottle that used `filelock`), and gives up with a clear error."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest
from filelock import FileLock

from bot_bottle.errors import StateError
from bot_bottle.state.file_lock import file_lock


def test_a_held_lock_times_out_with_the_file_named(tmp_path: Path) -> None:
    path = tmp_path / "slugs.lock"
    held = pytest.raises(StateError, match=r"slugs\.lock stayed locked")
    with FileLock(str(path)), held, file_lock(path, timeout=0.05):
        pass


def test_it_holds_the_flock_and_drops_it(tmp_path: Path) -> None:
    path = tmp_path / "global.lock"
    with file_lock(path, timeout=1):
        fd = os.open(path, os.O_RDWR)
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(fd)
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    with FileLock(str(path), timeout=0):
        pass
