"""Where the guest artefacts live (`<state home>/cache/microvm/`) and how they are
made: the kernel and initramfs need only apt and busybox; a root image is the agent
image the Docker backend would run for the same plan (general, claude, codex or an
agent's own Dockerfile), exported, so making one needs the Docker engine. A root made
from a content-digest tag is recorded under it and found again without the engine."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot_bottle.executor import Executor, ProcessExecutor
from bot_bottle.images.guest import initramfs, kernel, rootfs
from bot_bottle.state.store import home_dir

Progress = Callable[[str], None]


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
    return ensure_root_for("general", "", executor, progress, detail, cache)


def ensure_root_for(
    image: str,
    dockerfile: str = "",
    executor: Executor | None = None,
    progress: Progress = print,
    detail: Progress | None = None,
    cache: Path | None = None,
) -> Artefact:
    """The read-only root image of the agent image a plan names (`image`, `dockerfile`
    as the Docker backend reads them), the Docker image and the root built if missing.
    A root already made from a content-addressed tag is found without the engine."""
    from bot_bottle.images.agent_image import ensure_image, resolve

    cache = cache or cache_dir()
    known = resolve(image, dockerfile)
    if known.content_addressed:
        found = rootfs.cached(cache, known.tag)
        if found is not None:
            return Artefact(_root_name(known.tag), found, False)
    agent = ensure_image(image, dockerfile, progress=progress, detail=detail)
    path, built = rootfs.ensure(cache, agent.tag, executor or ProcessExecutor(), progress,
                                detail, record=agent.content_addressed)  # fmt: skip
    return Artefact(_root_name(agent.tag), path, built)


def cached_root_for(image: str, dockerfile: str = "", cache: Path | None = None) -> Path | None:
    """The root image `ensure_root_for` would return if it is already made, else None;
    never builds (for a launch's readiness: a root still to make takes minutes). May ask
    the engine (an image given by reference has no digest tag): BackendUnavailable
    when it cannot be reached."""
    from bot_bottle.images.agent_image import resolve

    cache = cache or cache_dir()
    known = resolve(image, dockerfile)
    found = rootfs.cached(cache, known.tag) if known.content_addressed else None
    return found or rootfs.cached_by_id(cache, known.tag)


def _root_name(tag: str) -> str:
    return f"root ({tag})"
