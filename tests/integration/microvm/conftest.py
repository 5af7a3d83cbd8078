"""The microVM guest, built once per session into the state home's cache (as `bot-bottle
images guest` does), and QEMU. In CI (`CI=true`) a host without QEMU or a Docker engine
(the root image is the Docker agent image) fails loudly; elsewhere the tests skip with
the reason. Boots are CPU-heavy under TCG (~2-3 s each): each test module boots once."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from bot_bottle.backends.microvm.qemu import QEMU
from bot_bottle.executor import ProcessExecutor
from bot_bottle.images.guest.store import BootFiles, ensure_boot, ensure_root, ensure_root_for


def _unavailable(msg: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):  # as ns_harness, e2e_support
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def boot_files() -> BootFiles:
    if shutil.which(QEMU) is None:
        _unavailable(f"{QEMU} is not installed (scripts/setup --test installs it)")
    files, _ = ensure_boot(ProcessExecutor(), progress=lambda _line: None)
    return files


@pytest.fixture(scope="session")
def root_image(boot_files: BootFiles) -> os.PathLike[str]:
    try:
        import docker

        docker.from_env(timeout=5).ping()
    except Exception as e:
        _unavailable(f"no Docker engine to build the root image from: {e}")
    return ensure_root(ProcessExecutor(), progress=lambda _line: None).path


@pytest.fixture(scope="session")
def agent_root(root_image: os.PathLike[str]) -> Callable[[str], Path]:
    """The root image of a bundled agent image by role (`agent_root("claude")`), each
    made once (the Docker image too, if missing: minutes) and cached as the CLI does."""
    made: dict[str, Path] = {}

    def get(role: str) -> Path:
        if role not in made:
            made[role] = ensure_root_for(role, executor=ProcessExecutor(),
                                         progress=lambda _line: None).path  # fmt: skip
        return made[role]

    return get
