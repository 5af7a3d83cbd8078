"""Trees a backend keeps on the host for a bottle: a workspace copy, and handing a tree
(HOME, that copy) to the agent's host user. Used by every backend whose bottle's files
live in its state dir (namespace, microvm)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from bot_bottle.backends.host_user import HostUser


def copy_workspace(source: str, target: Path, user: HostUser | None) -> None:
    """A `copy` workspace: `source` copied to `target` once (links kept as links,
    special files left out), then given to `user`."""
    if target.exists():
        return
    shutil.copytree(source, target, symlinks=True, ignore=special_files)
    if user is not None:
        chown_tree(target, user)


def special_files(directory: str, names: list[str]) -> set[str]:
    """What a workspace copy leaves out: FIFOs (reading one would hang the launch),
    sockets and device nodes, none of which is a file to work on."""
    skip = set()
    for name in names:
        mode = os.lstat(os.path.join(directory, name)).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
            skip.add(name)
    return skip


def chown_tree(root: Path, user: HostUser) -> None:
    """Give a tree to the agent's user: a fresh workspace copy, or a HOME kept from
    before the agent ran as that user. No agent runs meanwhile; links are not followed
    (lchown, no descent into symlinked directories) and a file with other hard links
    is left alone, since chown would reach the other names' file too."""
    for dirpath, dirnames, filenames in os.walk(root):
        os.chown(dirpath, user.uid, user.gid, follow_symlinks=False)
        for name in [*dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISDIR(st.st_mode) or st.st_nlink > 1:
                continue  # directories get their turn as dirpath
            os.chown(path, user.uid, user.gid, follow_symlinks=False)
