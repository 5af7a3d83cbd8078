"""`DockerTarget`: the provisioning `Target` of an agent container.

Files are batched: `put_file` queues, and the queue goes in as one archive per base
directory (HOME, workspace) on the next `run` or `flush`. Each `put_archive` is an
engine round trip of tens of milliseconds, and provisioning writes several files.
The container itself may still be starting (see `DockerBackend.prepare`): the first
call that needs it waits for it.
"""

from __future__ import annotations

import io
import posixpath
import tarfile
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, wait
from typing import TYPE_CHECKING, cast

from bot_bottle.backends.docker.layout import AGENT_USER, HOME, WORKSPACE
from bot_bottle.docker_engine import engine_errors
from bot_bottle.errors import BackendUnavailable, StateError
from bot_bottle.provision.target import CommandResult

if TYPE_CHECKING:
    from docker.models.containers import Container


def archive(
    files: Sequence[tuple[str, bytes, int]], user: str = AGENT_USER, dirs: Sequence[str] = ()
) -> bytes:
    """A tar of (relative path, data, mode) with their parent directories, plus `dirs`,
    all owned by `user` ("uid:gid"); extracting it chowns directories that exist."""
    uid, gid = (int(x) for x in user.split(":"))
    buf = io.BytesIO()
    now = time.time()
    seen: set[str] = set()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in dirs:
            seen.add(name)
            d = tarfile.TarInfo(name)
            d.type, d.mode, d.uid, d.gid, d.mtime = tarfile.DIRTYPE, 0o755, uid, gid, now
            tar.addfile(d)
        for relpath, data, mode in files:
            parts = relpath.split("/")
            for i in range(1, len(parts)):
                name = "/".join(parts[:i])
                if name not in seen:
                    seen.add(name)
                    d = tarfile.TarInfo(name)
                    d.type, d.mode, d.uid, d.gid, d.mtime = tarfile.DIRTYPE, 0o755, uid, gid, now
                    tar.addfile(d)
            f = tarfile.TarInfo(relpath)
            f.size, f.mode, f.uid, f.gid, f.mtime = len(data), mode, uid, gid, now
            tar.addfile(f, io.BytesIO(data))
    return buf.getvalue()


def resolve(path: str) -> str:
    """A bottle path (absolute, or `~/...`) as a normalized absolute path."""
    if path == "~" or path.startswith("~/"):
        path = HOME + path[1:]
    if not path.startswith("/"):
        raise ValueError(f"bottle path must be absolute or ~/...: {path!r}")
    return posixpath.normpath(path)


class DockerTarget:
    """Copies files in with `put_archive` and runs commands with `exec_run`, as the
    agent user. Writable places are HOME, the workspace and tmpfs; the root is
    read-only, so a step writing elsewhere fails loudly instead of silently."""

    def __init__(self, creation: Future[Container], user: str = AGENT_USER) -> None:
        """`creation` resolves to the agent container (a finished one for `resume`)."""
        self._creation = creation
        self._user = user
        self._pending: list[tuple[str, bytes, int]] = []
        self._lock = threading.Lock()

    @classmethod
    def of(cls, container: Container, user: str = AGENT_USER) -> DockerTarget:
        """A target over a container that already exists."""
        done: Future[Container] = Future()
        done.set_result(container)
        return cls(done, user)

    def ready(self) -> None:
        self._creation.result()

    def settle(self) -> None:
        """Wait for the creation to end, however it ends (its error is `ready`'s)."""
        wait([self._creation])

    @property
    def container(self) -> Container:
        return self._creation.result()

    @property
    def home(self) -> str:
        return HOME

    @property
    def workspace(self) -> str:
        return WORKSPACE

    def put_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        with self._lock:
            self._pending.append((resolve(path), data, mode))

    def flush(self) -> None:
        """Write every queued file (one archive per base directory)."""
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return
        groups: dict[str, list[tuple[str, bytes, int]]] = {}
        for full, data, mode in pending:
            base = next((b for b in (HOME, WORKSPACE) if full.startswith(b + "/")), None)
            if base is None:
                base = posixpath.dirname(full)
                self._check(self._exec(["mkdir", "-p", base], None), f"mkdir -p {base}")
            groups.setdefault(base, []).append((full[len(base) + 1 :], data, mode))
        c = self.container
        for base, files in groups.items():
            with engine_errors(f"copying files into {c.name}:{base}"):
                if not c.put_archive(base, archive(files, self._user)):
                    raise BackendUnavailable(f"the engine refused to write into {base}", "")

    def read_file(self, path: str, limit: int) -> bytes | None:
        """Through the engine's archive API: a link at the final name comes back as a
        link entry (read as absent), and links on the way resolve inside the container's
        root, so nothing outside the bottle is reached. At most `limit` bytes are taken."""
        self.flush()
        c = self.container
        try:
            with engine_errors(f"reading {path} in {c.name}"):
                stream, st = c.get_archive(resolve(path))
                if int((st or {}).get("size", 0)) > limit:
                    return None
                buf = bytearray()
                for chunk in stream:
                    buf += chunk
                    if len(buf) > limit + 64 * 1024:  # the tar headers fit in the slack
                        return None
        except StateError:  # the engine's NotFound: no such file
            return None
        with tarfile.open(fileobj=io.BytesIO(bytes(buf))) as tar:
            member = tar.next()
            if member is None or not member.isreg() or member.size > limit:
                return None
            f = tar.extractfile(member)
            return f.read() if f is not None else None

    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> CommandResult:
        self.flush()
        return self._exec(argv, env)

    def _exec(self, argv: Sequence[str], env: Mapping[str, str] | None) -> CommandResult:
        c = self.container
        with engine_errors(f"running {argv[0]} in {c.name}"):
            code, output = c.exec_run(
                list(argv), user=self._user, workdir=WORKSPACE, environment=dict(env or {}),
                demux=True,
            )  # fmt: skip
        # With demux the output is (stdout, stderr), each None when empty; the stubs type
        # only the plain form. The code is None only for detached or streamed execs.
        out, err = cast("tuple[bytes | None, bytes | None]", output)
        return CommandResult(-1 if code is None else code, (out or b"").decode(errors="replace"),
                             (err or b"").decode(errors="replace"))  # fmt: skip

    @staticmethod
    def _check(r: CommandResult, what: str) -> None:
        if r.returncode != 0:
            raise BackendUnavailable(f"{what} failed in the bottle: {r.stderr.strip()}", "")
