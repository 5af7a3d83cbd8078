"""A real Docker engine for these tests, started by `.ci/docker-setup.sh` when needed.

In CI (`CI=true`) a host that cannot run Docker fails loudly; elsewhere the tests skip
with the reason, visible in `pytest -rs`.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker_harness import FakeSidecar

from bot_bottle.backends.spec import BottleSpec, SidecarLink
from bot_bottle.executor import ProcessExecutor

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/netprobe.py

REPO = Path(__file__).resolve().parents[3]


def _engine_up() -> bool:
    try:
        import docker

        docker.from_env(timeout=5).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def docker_engine() -> None:
    if _engine_up():
        return
    in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")  # as ns_harness, e2e_support
    if os.geteuid() != 0 and not in_ci:
        pytest.skip("no Docker engine answering, and not root to start one")
    r = subprocess.run([str(REPO / ".ci/docker-setup.sh")], capture_output=True, text=True,
                       timeout=1800, check=False)  # fmt: skip
    if r.returncode != 0 or not _engine_up():
        msg = f"Docker engine unavailable: .ci/docker-setup.sh exited {r.returncode}:\n{r.stderr[-3000:]}"
        if in_ci:
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture
def backend(docker_engine: None) -> object:
    from bot_bottle.backends.docker.backend import DockerBackend

    return DockerBackend(ProcessExecutor())


@pytest.fixture
def spec(tmp_path: Path) -> Iterator[BottleSpec]:
    state = tmp_path / "state"
    sockets = state / "sockets"
    sockets.mkdir(parents=True, mode=0o700)
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "hello.txt").write_text("from the host workspace\n")
    slug = f"test-{secrets.token_hex(3)}"
    yield BottleSpec(
        slug=slug, state_dir=state, workspace_mode="copy", workspace_path=str(ws),
        env={"BOT_BOTTLE_TEST": "1"},
        sidecars=(SidecarLink("egress", sockets / "egress.sock", 3128),),
        image="general", cpus=1.0, memory="512m",
    )  # fmt: skip
    # Whatever a test left behind goes, even when it failed half way.
    import docker

    from bot_bottle.backends.docker.backend import remove_labelled

    remove_labelled(docker.from_env(), slug)


@pytest.fixture
def fake_egress(spec: BottleSpec) -> Iterator[FakeSidecar]:
    link = spec.sidecar("egress")
    assert link is not None
    s = FakeSidecar(link.socket)
    yield s
    s.close()
