"""The guest's root: the agent image the Docker backend runs (built from the same
debootstrap bootstrap), exported and packed as a read-only erofs image.

Exporting the Docker image means one recipe (images/agent/Dockerfile) for both
backends; the cost is that building the root needs the Docker engine and root (the
export is unpacked with its owners before `mkfs.erofs` packs it). The export is
unpacked with tarfile's `tar` filter: no member may land outside the directory or link
out of it, and setuid/setgid bits are dropped, so an agent image (a custom Dockerfile
can sit in the agent's workspace) cannot plant a privileged file in its own root.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from bot_bottle.docker_engine import connect, engine_errors
from bot_bottle.errors import BackendUnavailable
from bot_bottle.executor import Cmd, Executor

Progress = Callable[[str], None]
# lz4, not lz4hc: the guest reads both alike (lz4hc writes the same format), and on the
# claude image lz4hc took 83 s where lz4 took 11 s, for 7% less (807 MiB, not 865).
MKFS = ("mkfs.erofs", "-zlz4", "-T0", "--quiet")
FORMAT = "erofs-lz4-1"  # bump when the way the image is made changes


def key_for(image_id: str) -> str:
    return hashlib.sha256(f"{FORMAT}\0{image_id}".encode()).hexdigest()[:16]


def pointer(cache: Path, tag: str) -> Path:
    return cache / f"root-tag-{key_for(f'tag:{tag}')}"


def cached(cache: Path, tag: str) -> Path | None:
    """The root image recorded for `tag` by `ensure(..., record=True)`, found without
    the engine (a launch on a host whose roots are built needs no Docker), or None."""
    try:
        name = pointer(cache, tag).read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    root = cache / name
    return root if name.startswith("root-") and "/" not in name and root.is_file() else None


def cached_by_id(cache: Path, tag: str) -> Path | None:
    """The root image of the image the engine holds as `tag` (None if it has no such
    image, or its root is not built): asks the engine, builds nothing."""
    import docker.errors

    client = connect()
    with engine_errors(f"looking up {tag}"):
        try:
            image = client.images.get(tag)
        except docker.errors.ImageNotFound:
            return None
    target = cache / f"root-{key_for(str(image.id))}.erofs"
    return target if target.is_file() else None


def ensure(
    cache: Path,
    tag: str,
    executor: Executor,
    progress: Progress = print,
    detail: Progress | None = None,
    *,
    record: bool = False,
) -> tuple[Path, bool]:
    """The cached root image of Docker image `tag`; returns (path, built). `record`
    (only for a tag that is a content digest: it must always name the same image)
    notes the root under the tag for `cached`."""
    detail = detail or progress
    client = connect(timeout=600)
    with engine_errors(f"looking up {tag}"):
        image = client.images.get(tag)
    target = cache / f"root-{key_for(str(image.id))}.erofs"
    if target.is_file():
        if record:
            _record(cache, tag, target)
        return target, False
    if os.geteuid() != 0:
        raise BackendUnavailable("building the microVM root image needs root (the "
                                 "image's files keep their owners)", "run it with sudo")  # fmt: skip
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="root-", dir=cache) as tmp:
        work = Path(tmp)
        export = work / "export.tar"
        progress(f"root: exporting {tag}")
        with engine_errors(f"exporting {tag}"):
            container = client.containers.create(tag, command=["true"])
            try:
                written = 0
                with open(export, "wb") as f:
                    for chunk in container.export(chunk_size=1 << 20):
                        assert isinstance(chunk, bytes)  # the SDK's stubs say str
                        f.write(chunk)
                        written += len(chunk)
                        if written % (32 << 20) < len(chunk):
                            detail(f"root: {written >> 20} MB exported")
            finally:
                container.remove(force=True)
        tree = work / "tree"
        progress(f"root: unpacking {export.stat().st_size >> 20} MB")
        with tarfile.open(export) as tar:
            tar.extractall(tree, filter="tar")
        export.unlink()
        progress("root: mkfs.erofs (lz4)")
        out = work / "root.erofs"
        r = executor.run(Cmd((*MKFS, str(out), str(tree))))
        if r.returncode != 0:
            raise BackendUnavailable(f"mkfs.erofs failed: {r.stderr.strip()}",
                                     "apt-get install erofs-utils")  # fmt: skip
        os.replace(out, target)
    if record:
        _record(cache, tag, target)
    progress(f"root: {target.name} ({target.stat().st_size >> 20} MB)")
    return target, True


def _record(cache: Path, tag: str, root: Path) -> None:
    target = pointer(cache, tag)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    tmp.write_text(root.name + "\n")
    os.replace(tmp, target)  # atomic: a concurrent `cached` reads the old or the new
