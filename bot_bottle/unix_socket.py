"""Unix sockets at paths of any length.

A socket address holds at most 107 bytes of path, and a state dir under a deep
`BOT_BOTTLE_HOME` (or pytest's tmp dirs) is longer than that. Both ends go through
`/proc/self/fd/N/NAME`, N an fd of the socket's directory: the kernel resolves the
magic link, so the address stays short whatever the directory's path.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def _short(path: Path) -> Iterator[tuple[int, str]]:
    """The directory's fd (no symlink followed at its last step) and a short address."""
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        yield fd, f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def listen(path: Path, *, backlog: int = 16) -> socket.socket:
    """A stream socket listening at `path` (a stale one there is replaced), mode 0600
    from the start: bound under umask 0177, so no other user can connect in between."""
    with _short(path) as (fd, address):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path.name, dir_fd=fd)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # close-on-exec by default
        old = os.umask(0o177)
        try:
            s.bind(address)
            s.listen(backlog)
        except OSError:
            s.close()
            raise
        finally:
            os.umask(old)
        return s


def connect(s: socket.socket, path: Path) -> None:
    """Connect `s` to the socket at `path`; the errors are connect(2)'s (a missing
    directory is FileNotFoundError, as a missing socket is)."""
    with _short(path) as (_, address):
        s.connect(address)
