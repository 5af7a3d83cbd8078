"""Backend parametrization for the e2e tests: the same test runs in a namespace bottle
and in a Docker bottle. Import `bottle_backend` into `conftest.py`, take it as a test
argument and write `backend: {bottle_backend}` into the test's manifest.

Docker needs an engine and the images: `.ci/docker-setup.sh` provides both (and is a
fraction of a second when done). With CI=true a host that cannot run a backend fails
the run; elsewhere the test skips with the reason.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from e2e_support import check_bwrap, need

REPO = Path(__file__).resolve().parents[2]
BACKENDS = ("namespace", "docker")
# The escape, egress, git-gate and fail-closed suites run on the microVM backend too.
VM_BACKENDS = (*BACKENDS, "microvm")


def _docker_ready() -> tuple[bool, str]:
    r = subprocess.run([str(REPO / ".ci/docker-setup.sh")], capture_output=True, text=True,
                       timeout=1800, check=False)  # fmt: skip
    return r.returncode == 0, r.stderr[-2000:]


@pytest.fixture(scope="session")
def docker_ready() -> None:
    ok, why = _docker_ready()
    need(ok, f"no usable Docker engine (.ci/docker-setup.sh failed):\n{why}")


@pytest.fixture(params=BACKENDS)
def bottle_backend(request: pytest.FixtureRequest) -> str:
    """The backend id to put in the manifest; the backend's prerequisites are met."""
    backend = str(request.param)
    if backend == "namespace":
        check_bwrap()
    else:
        request.getfixturevalue("docker_ready")
    return backend


@pytest.fixture(scope="session")
def microvm_ready(docker_ready: None) -> None:
    """QEMU, and the guest built once (its root is the Docker agent image, exported)."""
    from bot_bottle.backends.microvm.qemu import QEMU
    from bot_bottle.images.guest.store import ensure_boot, ensure_root

    need(shutil.which(QEMU) is not None, f"{QEMU} is not installed (scripts/setup --test)")
    ensure_boot(progress=lambda _line: None)
    ensure_root(progress=lambda _line: None)


@pytest.fixture(params=VM_BACKENDS)
def any_backend(request: pytest.FixtureRequest) -> str:
    """As `bottle_backend`, and the microVM backend besides."""
    backend = str(request.param)
    if backend == "namespace":
        check_bwrap()
    elif backend == "docker":
        request.getfixturevalue("docker_ready")
    else:
        request.getfixturevalue("microvm_ready")
    return backend
