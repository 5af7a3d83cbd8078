"""The files a guest gets before its command runs (the egress CA, later the prompt,
skills, git config), written as a tar onto a read-only disk: the guest has no shared
filesystem and its kernel command line is too short to carry them. Stage 2 unpacks it
into /run/bot-bottle/files (a tmpfs) as root."""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


@dataclass(frozen=True)
class GuestFile:
    """One file: a relative path under /run/bot-bottle/files, its bytes and mode."""

    path: str
    data: bytes
    mode: int = 0o644


def write(files: list[GuestFile], out: Path) -> Path:
    """A tar of `files` (root-owned, fixed mtime) at `out`; a path that is absolute or
    climbs with `..` is refused, so nothing is unpacked outside the files directory."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for f in files:
            p = PurePosixPath(f.path)
            if p.is_absolute() or ".." in p.parts or not p.parts:
                raise ValueError(f"guest file path {f.path!r} must be relative, without '..'")
            info = tarfile.TarInfo(str(p))
            info.size, info.mode, info.mtime = len(f.data), f.mode, 0
            tar.addfile(info, io.BytesIO(f.data))
    data = buf.getvalue()
    out.write_bytes(data + b"\0" * (-len(data) % 512))  # a disk is whole sectors
    return out
