"""`ConfinedDir`: the one way the launcher writes into a directory the agent controls.

A bottle's HOME is kept for `resume` and its workspace is the agent's to shape, so
by the time the launcher provisions (as root, possibly) they may hold whatever the
agent planted: `~/.aws -> /root/.aws`, `~/.claude.json -> /etc/passwd`, a hard link
to a host file, a FIFO. Every write here therefore:

- walks the path one component at a time from an open directory fd, opening each
  directory with `O_NOFOLLOW | O_DIRECTORY`; a symlink, file or FIFO where a
  directory belongs is removed and a real directory made in its place;
- never opens what is at the final name: the data goes into a fresh file created
  with `O_CREAT | O_EXCL | O_NOFOLLOW` next to it, which `rename` then puts in
  place. A planted link (symbolic or hard) or FIFO is replaced, never written
  through, truncated or read;
- refuses `..`, absolute paths and a directory at the final name, and strips
  setuid/setgid/sticky bits from the mode.

No agent process runs while the launcher provisions (the sandbox or container is
started fresh afterwards), so there is nobody to race between these steps; the fd
walk is what makes the result independent of what the agent left behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO planted at the name must not hang the launcher on open.
_READ_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class UnsafePath(ValueError):
    """A name that would leave the directory, or a place a file cannot go."""


class ConfinedDir:
    """Writes files beneath `root` without following anything found there. `owner`
    (uid, gid) is given to what it creates, when the agent runs as another user."""

    def __init__(self, root: Path, owner: tuple[int, int] | None = None) -> None:
        self.root = root
        self.owner = owner

    def write(self, rel: str, data: bytes, mode: int = 0o644) -> None:
        """Put `data` at `rel` (relative to root), creating parent directories."""
        parts = _parts(rel)
        try:
            fd = os.open(self.root, _DIR_FLAGS)
        except OSError as e:
            raise UnsafePath(f"{self.root}: not a directory bot-bottle can write in: "
                             f"{e.strerror}") from None  # fmt: skip
        try:
            for name in parts[:-1]:
                fd = self._enter(fd, name)
            self._put(fd, parts[-1], data, mode & 0o777)
        finally:
            os.close(fd)

    def read(self, rel: str, limit: int) -> bytes | None:
        """The content of `rel` if it is the agent's own plain file: reached without
        following a link, a regular file with one link (a hard link could be a host
        file), at most `limit` bytes. Anything else reads as absent (None)."""
        parts = _parts(rel)
        try:
            fd = os.open(self.root, _DIR_FLAGS)
        except OSError:
            return None
        try:
            for name in parts[:-1]:
                parent, fd = fd, -1
                try:
                    fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
                finally:
                    os.close(parent)
            file_fd = os.open(parts[-1], _READ_FILE, dir_fd=fd)
        except OSError:
            return None
        finally:
            if fd >= 0:
                os.close(fd)
        with os.fdopen(file_fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_size > limit:
                return None
            data = f.read(limit + 1)
        return data if len(data) <= limit else None

    def _enter(self, parent: int, name: str) -> int:
        """Open directory `name` in `parent` (closing `parent`), replacing whatever
        non-directory stands there."""
        try:
            try:
                return os.open(name, _DIR_FLAGS, dir_fd=parent)
            except FileNotFoundError:
                pass
            except OSError as e:
                if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                os.unlink(name, dir_fd=parent)  # a symlink, file or FIFO: not ours to follow
            os.mkdir(name, 0o755, dir_fd=parent)
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
            self._own(fd)
            return fd
        finally:
            os.close(parent)

    def _put(self, parent: int, name: str, data: bytes, mode: int) -> None:
        tmp = f".{name[:200]}.bb-{secrets.token_hex(4)}"
        fd = os.open(tmp, _NEW_FILE, 0o600, dir_fd=parent)
        try:
            with os.fdopen(fd, "wb", closefd=False) as f:
                f.write(data)
            self._own(fd)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        try:
            existing = os.lstat(name, dir_fd=parent)
        except FileNotFoundError:
            existing = None
        if existing is not None and stat.S_ISDIR(existing.st_mode):
            os.unlink(tmp, dir_fd=parent)
            raise UnsafePath(f"{name}: a directory stands where bot-bottle puts a file; "
                             "remove it in the bottle")  # fmt: skip
        try:
            os.rename(tmp, name, src_dir_fd=parent, dst_dir_fd=parent)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=parent)
            raise

    def _own(self, fd: int) -> None:
        if self.owner is not None:
            os.fchown(fd, *self.owner)


def _parts(rel: str) -> list[str]:
    parts = rel.split("/")
    if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise UnsafePath(f"{rel!r}: expected a relative path of plain names")
    return parts
