"""E2E fixtures: the real agent CLIs in real namespace bottles against fake APIs.

Agent CLIs come from `$BOT_BOTTLE_AGENTS`, else `<bot-bottle home>/agents` (where
`bot-bottle agents install claude codex` puts them). With CI=true a missing CLI,
bubblewrap or user namespaces fail the run instead of skipping it.
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest_docker import any_backend, bottle_backend, docker_ready, microvm_ready
from e2e_support import check_bwrap, need
from fakes.provider_api import FakeProviderAPI, start

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration" / "egress"))

from egress_upstream import Upstream, start_upstream

__all__ = ["any_backend", "bottle_backend", "docker_ready", "microvm_ready"]


@pytest.fixture(autouse=True)
def _stop_egress_helpers(tmp_path: Path) -> Iterator[None]:
    """Runs start a per-user egress helper in the test's own state dir; stop it with the
    test, so a suite of bottles does not leave one warm process per test behind; and
    collect the bottles whose launcher the test killed."""
    yield
    from bot_bottle.backends.docker.gc import collect
    from bot_bottle.sidecars.egress import helper
    from bot_bottle.state.store import StateStore

    for run_dir in {p.parent for p in tmp_path.rglob(helper.SOCKET_GLOB)}:
        helper.stop_all(run_dir)
    # A test that killed its launcher (SIGKILL runs no cleanup) leaves that bottle's
    # sidecars running until a `gc` or the next `run` of the same state dir, which never
    # comes once pytest removes the dir: collect them now. Only this test's state dir
    # (`orphans=False`: other tests' containers are not this one's to judge).
    for home in {p.parent.parent.parent for p in tmp_path.glob("**/bottles/*/metadata.json")}:
        collect(store=StateStore(home), orphans=False)


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Upstream]:
    """A recording HTTPS upstream on loopback (the egress tests' own), for the test."""
    (tmp_path / "up").mkdir()
    up = start_upstream(tmp_path / "up")
    yield up
    up.stop()


@pytest.fixture(scope="session")
def bwrap_ok() -> None:
    check_bwrap()


@pytest.fixture
def fake_api(tmp_path: Path) -> Iterator[FakeProviderAPI]:
    need(os.geteuid() == 0, "the fake API binds port 443 on a loopback address (needs root)")
    for _ in range(20):
        addr = f"127.0.{random.randint(1, 250)}.{random.randint(2, 250)}"
        try:
            api = start(addr, tmp_path)
            break
        except OSError:
            continue
    else:
        pytest.fail("no free loopback address for the fake API")
    yield api
    api.stop()
