"""Where the guest artefacts live (`<state home>/cache/microvm/`) and how all of them
are made at once: the kernel and initramfs need only apt and busybox; the root image
needs the Docker engine (it is the Docker agent image, exported)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot_bottle.executor import Executor, ProcessExecutor
from bot_bottle.images.guest import initramfs, kernel, rootfs
from bot_bottle.state.store import home_dir

Progress = Callable[[str], None]
ROOT_IMAGE = "agent-general"


def cache_dir() -> Path:
    """`$BOT_BOTTLE_GUEST_CACHE`, else `<state home>/cache/microvm`. The artefacts hold
    nothing of any bottle's, so state homes may share one (the test suites do)."""
    override = os.environ.get("BOT_BOTTLE_GUEST_CACHE")
    return Path(override) if override else home_dir() / "cache" / "microvm"


@dataclass(frozen=True)
class BootFiles:
    """What a VM boots from: the kernel image and bot-bottle's initramfs."""

    kernel: kernel.Kernel
    initramfs: Path


@dataclass(frozen=True)
class Artefact:
    """One line of `bot-bottle images guest`: what, where, and whether it was built now."""

    name: str
    path: Path
    built: bool


def ensure_boot(
    executor: Executor | None = None, progress: Progress = print, cache: Path | None = None
) -> tuple[BootFiles, list[Artefact]]:
    """The kernel and initramfs, fetched and built if missing."""
    executor = executor or ProcessExecutor()
    cache = cache or cache_dir()
    k, k_built = kernel.ensure(cache, executor, progress)
    ird, ird_built = initramfs.ensure(cache, k)
    rows = [Artefact(f"kernel {k.release}", k.vmlinuz, k_built),
            Artefact("initramfs", ird, ird_built)]  # fmt: skip
    return BootFiles(k, ird), rows


def cached_boot(executor: Executor | None = None, cache: Path | None = None) -> BootFiles | None:
    """The boot files if the kernel is already fetched (the initramfs, local and quick,
    is built if needed), else None: for `doctor`, which never downloads."""
    executor = executor or ProcessExecutor()
    cache = cache or cache_dir()
    pkg = kernel.resolve(executor, cache=cache)
    if not (cache / f"kernel-{pkg.key}" / "release").is_file():
        return None
    files, _ = ensure_boot(executor, lambda _line: None, cache)
    return files


def ensure_root(
    executor: Executor | None = None,
    progress: Progress = print,
    detail: Progress | None = None,
    cache: Path | None = None,
) -> Artefact:
    """The read-only root image of the bundled general agent image (built if missing)."""
    from bot_bottle.images.build import BUNDLED, ensure

    tag, _ = ensure(BUNDLED[ROOT_IMAGE], progress=progress, detail=detail)
    path, built = rootfs.ensure(cache or cache_dir(), tag, executor or ProcessExecutor(),
                                progress, detail)  # fmt: skip
    return Artefact(f"root ({tag})", path, built)
