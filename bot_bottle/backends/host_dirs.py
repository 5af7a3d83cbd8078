"""Provisioning into a bottle whose HOME and workspace are host directories (namespace:
bound into the sandbox; microvm: shared with the guest over virtiofs): files are
written on the host, through `ConfinedDir`, since those directories hold what the agent
left there and nothing in them may be followed."""

from __future__ import annotations

import os
from pathlib import Path

from bot_bottle.backends.confined_dir import ConfinedDir


class HostDirs:
    """`home` and `workspace` (None: the bottle has none) on the host, seen by the agent
    at `bottle_home` and `bottle_workspace`; what is written is given to `owner`."""

    def __init__(
        self, home: Path, workspace: Path | None, owner: tuple[int, int] | None,
        bottle_home: str, bottle_workspace: str,
    ) -> None:  # fmt: skip
        self._places = ((bottle_home, home), (bottle_workspace, workspace))
        self._owner = owner
        self._home = bottle_home

    def place(self, path: str) -> tuple[ConfinedDir, str]:
        """The host directory behind bottle path `path` and the name beneath it;
        refuses anything that would land outside HOME or the workspace (`..` included)."""
        if path.startswith("~/"):
            path = self._home + path[1:]
        norm = os.path.normpath(path)
        for inside, outside in self._places:
            if outside is not None and norm.startswith(inside + "/"):
                return ConfinedDir(outside, self._owner), os.path.relpath(norm, inside)
        raise ValueError(f"{path}: a bottle only takes files under ~/ or the workspace")

    def put_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        where, rel = self.place(path)
        where.write(rel, data, mode)

    def read_file(self, path: str, limit: int) -> bytes | None:
        where, rel = self.place(path)
        return where.read(rel, limit)
