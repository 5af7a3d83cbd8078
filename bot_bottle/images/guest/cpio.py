"""A `newc` cpio archive (what the kernel unpacks as an initramfs), written in Python.

Deterministic (fixed mtimes, inode numbers in order, root-owned), so the same inputs
give the same bytes and the archive's digest names its content. It also carries the
`/dev/console` node the kernel opens for init's output, which needs no `mknod` here.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass

_MAGIC = b"070701"


@dataclass(frozen=True)
class Entry:
    """One member: a path without a leading `/`, its mode (type and permissions), its
    data for a regular file, and the device numbers for a character device."""

    path: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def directory(path: str) -> Entry:
    return Entry(path, stat.S_IFDIR | 0o755)


def file(path: str, data: bytes, perm: int = 0o644) -> Entry:
    return Entry(path, stat.S_IFREG | perm, data)


def char_device(path: str, major: int, minor: int) -> Entry:
    return Entry(path, stat.S_IFCHR | 0o600, rdev=(major, minor))


def _pad(n: int) -> bytes:
    return b"\0" * (-n % 4)


def _header(ino: int, e: Entry, name: bytes) -> bytes:
    nlink = 2 if stat.S_ISDIR(e.mode) else 1
    fields = (ino, e.mode, 0, 0, nlink, 0, len(e.data), 0, 0, e.rdev[0], e.rdev[1],
              len(name) + 1, 0)  # fmt: skip
    return _MAGIC + b"".join(b"%08X" % f for f in fields)


def archive(entries: list[Entry]) -> bytes:
    """The archive of `entries` (parents before children), with its trailer."""
    out = bytearray()
    for ino, e in enumerate([*entries, Entry("TRAILER!!!", 0)], start=1):
        name = e.path.encode()
        head = _header(0 if name == b"TRAILER!!!" else ino, e, name) + name + b"\0"
        out += head + _pad(len(head)) + e.data + _pad(len(e.data))
    return bytes(out)
