"""`DockerTarget`: the provisioning `Target` of a running agent container."""

from __future__ import annotations

import io
import posixpath
import tarfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

from bot_bottle.backends.docker.engine import engine_errors
from bot_bottle.backends.docker.layout import AGENT_USER, HOME, WORKSPACE
from bot_bottle.errors import BackendUnavailable
from bot_bottle.provision.target import CommandResult

_UID, _GID = (int(x) for x in AGENT_USER.split(":"))


def file_archive(relpath: str, data: bytes, mode: int) -> bytes:
    """A tar of `relpath` (with its parent directories) owned by the agent user."""
    buf = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        parts = relpath.split("/")
        for i in range(1, len(parts)):
            d = tarfile.TarInfo("/".join(parts[:i]))
            d.type, d.mode, d.uid, d.gid, d.mtime = tarfile.DIRTYPE, 0o755, _UID, _GID, now
            tar.addfile(d)
        f = tarfile.TarInfo(relpath)
        f.size, f.mode, f.uid, f.gid, f.mtime = len(data), mode, _UID, _GID, now
        tar.addfile(f, io.BytesIO(data))
    return buf.getvalue()


class DockerTarget:
    """Copies files in with `put_archive` and runs commands with `exec_run`, as the
    agent user. Writable places are HOME, the workspace and tmpfs; the root is
    read-only, so a step writing elsewhere fails loudly instead of silently."""

    def __init__(self, container: Any) -> None:
        self._c = container

    @property
    def home(self) -> str:
        return HOME

    @property
    def workspace(self) -> str:
        return WORKSPACE

    def _resolve(self, path: str) -> str:
        if path == "~" or path.startswith("~/"):
            path = HOME + path[1:]
        if not path.startswith("/"):
            raise ValueError(f"bottle path must be absolute or ~/...: {path!r}")
        return posixpath.normpath(path)

    def put_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        full = self._resolve(path)
        for base in (HOME, WORKSPACE):
            if full.startswith(base + "/"):
                archive = file_archive(full[len(base) + 1 :], data, mode)
                break
        else:
            parent = posixpath.dirname(full)
            self._check(self.run(["mkdir", "-p", parent]), f"mkdir -p {parent}")
            base, archive = parent, file_archive(posixpath.basename(full), data, mode)
        with engine_errors(f"copying {full} into {self._c.name}"):
            if not self._c.put_archive(base, archive):
                raise BackendUnavailable(f"the engine refused to write {full}", "")

    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> CommandResult:
        with engine_errors(f"running {argv[0]} in {self._c.name}"):
            code, (out, err) = self._c.exec_run(
                list(argv), user=AGENT_USER, workdir=WORKSPACE, environment=dict(env or {}),
                demux=True,
            )  # fmt: skip
        return CommandResult(int(code), (out or b"").decode(errors="replace"),
                             (err or b"").decode(errors="replace"))  # fmt: skip

    @staticmethod
    def _check(r: CommandResult, what: str) -> None:
        if r.returncode != 0:
            raise BackendUnavailable(f"{what} failed in the bottle: {r.stderr.strip()}", "")
