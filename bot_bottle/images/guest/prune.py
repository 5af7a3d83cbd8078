"""Old guest artefacts, found for `bot-bottle images prune`: a new kernel package, busybox or
init script, or a rebuilt agent image, leaves the previous kernel, initramfs or root
(a root of the claude image is most of a gigabyte) in the cache for good otherwise.

Kept: the kernel of the package apt resolves now and its initramfs; every root a
current bundled image's tag points at; every root of an image the Docker engine still
holds. When apt or the engine cannot answer, what depends on them is kept: nothing is
removed on a guess. A running VM holds its files open, so removing them never breaks
one; a build in progress is left alone (temporary files younger than an hour)."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from bot_bottle.errors import BotBottleError
from bot_bottle.executor import Executor
from bot_bottle.images.guest import initramfs, kernel, rootfs

STALE_TEMP_S = 3600


@dataclass(frozen=True)
class Stale:
    path: Path
    reason: str


def stale(cache: Path, executor: Executor) -> list[Stale]:
    """What in `cache` no launch would use again, and why."""
    if not cache.is_dir():
        return []
    out: list[Stale] = []
    boot = _current_boot(cache, executor)
    roots = _current_roots(cache)
    now = time.time()
    for entry in sorted(cache.iterdir()):
        name = entry.name
        if entry.is_dir() and not (entry / "release").is_file():
            if name.startswith(("kernel-", "root-")) and now - _mtime(entry) > STALE_TEMP_S:
                out.append(Stale(entry, "left by a build that did not finish"))
        elif name.endswith(".tmp"):
            if now - _mtime(entry) > STALE_TEMP_S:
                out.append(Stale(entry, "left by a write that did not finish"))
        elif _boot_file(entry) and boot is not None and name not in boot:
            out.append(Stale(entry, "an older guest kernel or initramfs"))
        elif name.startswith("root-tag-") and roots is not None and name not in roots:
            out.append(Stale(entry, "points at a root no current image uses"))
        elif _root_file(name) and roots is not None and name not in roots:
            out.append(Stale(entry, "the root of an image no longer built or held"))
    return out


def remove(found: list[Stale]) -> None:
    for s in found:
        if s.path.is_dir() and not s.path.is_symlink():
            shutil.rmtree(s.path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                s.path.unlink()


def _current_boot(cache: Path, executor: Executor) -> set[str] | None:
    try:
        pkg = kernel.resolve(executor, cache=cache)
    except BotBottleError:
        return None
    kdir = cache / f"kernel-{pkg.key}"
    keep = {kdir.name}
    try:
        release = (kdir / "release").read_text().strip()
        keep.add(initramfs.target_for(cache, kernel.Kernel(kdir, release))[0].name)
    except (OSError, BotBottleError):
        return None  # no current initramfs to tell from the old ones
    return keep


def _current_roots(cache: Path) -> set[str] | None:
    """Names of the roots (and their tag pointers) to keep, or None: keep them all."""
    from bot_bottle.images.agent_image import resolve
    from bot_bottle.images.build import BUNDLED

    keep: set[str] = set()
    for name in BUNDLED:
        try:
            known = resolve(name.removeprefix("agent-"))
        except BotBottleError:
            return None
        pointer = rootfs.pointer(cache, known.tag)
        keep.add(pointer.name)
        found = rootfs.cached(cache, known.tag)
        if found is not None:
            keep.add(found.name)
    try:
        from bot_bottle.docker_engine import connect

        images = connect(timeout=10).images.list()
    except Exception:  # no engine: its images' roots cannot be told from old ones
        return None
    held = {f"root-{rootfs.key_for(str(i.id))}.erofs" for i in images}
    keep |= held
    for entry in cache.glob("root-tag-*"):
        with contextlib.suppress(OSError):
            if entry.read_text().strip() in held:
                keep.add(entry.name)
    return keep


def _boot_file(entry: Path) -> bool:
    if entry.name.startswith("kernel-"):
        return entry.is_dir()  # kernel-package.json is apt's answer, kept
    return entry.name.startswith("initramfs-") and entry.name.endswith(".cpio.gz")


def _root_file(name: str) -> bool:
    return name.startswith("root-") and name.endswith(".erofs")


def _mtime(path: Path) -> float:
    try:
        return os.lstat(path).st_mtime
    except OSError:
        return time.time()
