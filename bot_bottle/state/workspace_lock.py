"""One workspace, one writer: the lock a bottle holds on its mounted workspace.

Two agents editing the same files at once overwrite each other's work without either
noticing, so a launch registers itself as a *holder* of its `mount` workspace for the
bottle's life, and a second launch on the same directory (or one inside or around it)
is refused, naming the bottle that holds it, unless it asks to share.

A holder is a file in `<state root>/locks/workspaces/` that its launcher keeps
`flock`ed: the kernel drops the lock when the launcher's last descriptor closes,
however it ends (SIGKILL and the OOM killer included), so a holder is alive exactly
while its file cannot be locked by someone else, with no pid to be reused and no stale
lock to clean by hand. The descriptor is close-on-exec: sidecars and sandboxes the
launcher starts never inherit it (a sidecar left running by a killed launcher must not
keep the workspace locked). Registration and the look at the other holders happen
under one guard lock, so two launches at the same moment cannot both see it free.

`copy` and `none` workspaces are private to their bottle and never locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from bot_bottle.errors import StateError
from bot_bottle.state.file_lock import file_lock

GUARD_TIMEOUT = 30.0


class WorkspaceBusy(StateError):
    """Another live bottle holds the workspace (or a directory inside or around it)."""


@dataclass(frozen=True)
class Holder:
    """A live holder as another launch sees it: its bottle (empty while it is still
    being created), its launcher's pid and the workspace it holds."""

    slug: str
    pid: int
    path: str


def _overlaps(a: str, b: str) -> bool:
    """Whether one directory is the other or lies inside it (both real paths)."""
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


class WorkspaceLock:
    """This launch's registration as a holder; `release` (or the process's end) drops it."""

    def __init__(self, directory: Path, path: str, share: bool) -> None:
        self._dir = directory
        self.path = path
        self.share = share
        self._file: Path | None = None
        self._fd: int | None = None

    # ------------------------------------------------------------------ acquire

    def acquire(self) -> WorkspaceLock:
        """Register, or raise `WorkspaceBusy` naming the live holders (unless sharing)."""
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._guard():
            busy = [h for h in self._live_holders() if _overlaps(h.path, self.path)]
            if busy and not self.share:
                raise WorkspaceBusy(_busy_message(self.path, busy),
                                    _busy_fix(busy))  # fmt: skip
            name = self._dir / f"{secrets.token_hex(8)}.holder"
            fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW,
                         0o600)  # fmt: skip
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # new file: nobody else has it
            self._file, self._fd = name, fd
            self._write("")
        return self

    def name(self, slug: str) -> None:
        """Record which bottle holds the lock, once its slug exists."""
        if self._fd is not None:
            self._write(slug)

    def release(self) -> None:
        if self._fd is None:
            return
        assert self._file is not None
        with contextlib.suppress(OSError):
            self._file.unlink()  # before the unlock: a looker never finds it unlocked
        os.close(self._fd)
        self._fd = self._file = None

    # ------------------------------------------------------------------ helpers

    def _write(self, slug: str) -> None:
        assert self._fd is not None
        data = json.dumps({"slug": slug, "pid": os.getpid(), "path": self.path}).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def _guard(self) -> contextlib.AbstractContextManager[None]:
        return file_lock(self._dir / ".guard", GUARD_TIMEOUT)

    def _live_holders(self) -> list[Holder]:
        """The holders whose launcher still runs; the files of dead ones are removed
        (under the guard, so no new holder is between creating and locking its file)."""
        live = []
        for f in sorted(self._dir.glob("*.holder")):
            try:
                fd = os.open(f, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    live.append(_read_holder(fd))
                    continue
                f.unlink(missing_ok=True)  # its launcher is gone
            finally:
                os.close(fd)
        return live


def _read_holder(fd: int) -> Holder:
    try:
        raw = json.loads(os.pread(fd, 65536, 0) or b"{}")
        return Holder(str(raw.get("slug", "")), int(raw.get("pid", 0)), str(raw.get("path", "")))
    except (ValueError, TypeError, AttributeError):
        return Holder("", 0, "")


def _who(h: Holder) -> str:
    return f"bottle {h.slug}" if h.slug else f"a bottle still starting (launcher pid {h.pid})"


def _busy_message(path: str, busy: list[Holder]) -> str:
    where = ", ".join(
        _who(h) + ("" if h.path == path else f" (on {h.path})") for h in busy
    )  # fmt: skip
    return f"workspace {path} is in use by {where}: two agents writing one directory " \
           "overwrite each other's work"  # fmt: skip


def _busy_fix(busy: list[Holder]) -> str:
    named = [h.slug for h in busy if h.slug]
    stop = f"`bot-bottle stop {named[0]}`, " if named else ""
    return f"wait for it to end, {stop}or pass --share-workspace to run beside it anyway"


def workspace_lock(locks_root: Path, mode: str, path: str, share: bool) -> WorkspaceLock | None:
    """The lock a bottle with this workspace must hold, or None for a private one."""
    if mode != "mount" or not path:
        return None
    return WorkspaceLock(locks_root / "workspaces", os.path.realpath(path), share)
