"""The one seam every provisioning step is written against; each backend implements it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from bot_bottle.executor import CommandResult

__all__ = ["CommandResult", "Target"]


class Target(Protocol):
    """A started (or prepared) bottle: its HOME and workspace paths as the agent sees
    them, a way to put a file, and a way to run a command inside."""

    @property
    def home(self) -> str: ...

    @property
    def workspace(self) -> str: ...

    def ready(self) -> None:
        """Block until the bottle takes files and commands; raise what went wrong
        creating it (a backend may still be creating it in the background)."""

    def put_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Write `data` at `path` (absolute in the bottle, or `~/...`), creating parents."""

    def read_file(self, path: str, limit: int) -> bytes | None:
        """The agent's file at `path` (as `put_file` takes it) when it is a regular file
        of at most `limit` bytes, reached without following a link; else None. What it
        returns is the agent's to write: parse it as untrusted input."""

    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> CommandResult:
        """Run `argv` inside the bottle as the agent user and wait for it."""
