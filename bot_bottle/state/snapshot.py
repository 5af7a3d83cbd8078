"""Directories a launch reads (skills), read once: what is hashed for the approval is
what the bottle gets.

Provisioning copies skills into the bottle after the approval check; had it read the
host directory again, whoever could write there in between would slip in files the
operator never approved. Instead the launch reads each directory once, hashes those
bytes, and writes them to a content-addressed copy in bot-bottle's state root, which
provisioning then reads. Links are recorded (their target is part of the digest) but
never followed or copied: a link planted in a skill directory cannot pull a host file
into the bottle.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from bot_bottle.plan.review import sha256


@dataclass(frozen=True)
class Tree:
    """A directory as read: entry -> description (kind, mode, digest or link target),
    and the bytes of its regular files."""

    entries: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return sha256(json.dumps(sorted(self.entries.items())).encode())


def read_tree(root: str, keep_bytes: bool = False) -> Tree:
    """Walk `root` without following links below it (`root` itself may be a link)."""
    tree = Tree()
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for name in [*dirs, *sorted(files)]:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            mode = f"{st.st_mode & 0o7777:o}"
            if stat.S_ISLNK(st.st_mode):
                tree.entries[rel] = f"link -> {os.readlink(p)}"
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb", opener=_nofollow) as f:
                    data = f.read()
                tree.entries[rel] = f"file mode {mode} ({sha256(data).removeprefix('sha256:')})"
                if keep_bytes:
                    tree.files[rel] = data
            elif stat.S_ISDIR(st.st_mode):
                tree.entries[rel] = f"dir mode {mode}"
            else:
                tree.entries[rel] = f"special {stat.S_IFMT(st.st_mode):o}"
    return tree


def _nofollow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW)


def write_snapshot(tree: Tree, store_root: Path, name: str) -> str:
    """`tree`'s regular files under `<store_root>/snapshots/<digest>/<name>`, written
    once (a finished snapshot is renamed into place whole); returns that path."""
    base = store_root / "snapshots"
    final = base / tree.digest.removeprefix("sha256:")
    dest = final / name
    if dest.is_dir():
        return str(dest)
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = base / f".{final.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / name).mkdir(parents=True, mode=0o700)
    for rel, data in tree.files.items():
        out = tmp / name / rel
        out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        out.write_bytes(data)
    try:
        os.rename(tmp, final)
    except OSError:  # another launch finished the same snapshot first
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
    return str(dest)
