"""A real namespace bottle for escape tests, probed unguarded in CI (fixtures re-exported
by conftest.py; a uniquely named module so tests can import `Bottle` unambiguously)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot_bottle.backends.namespace.backend import NamespaceBackend, NamespaceTarget
from bot_bottle.backends.spec import BottleSpec, SidecarLink

PONG_SERVER = """
import socket, sys, threading
srv = socket.socket(socket.AF_UNIX)
srv.bind(sys.argv[1])
srv.listen(64)
print("READY", flush=True)
def answer(conn):
    with conn:
        conn.sendall(b"PONG\\n")
while True:
    threading.Thread(target=answer, args=(srv.accept()[0],), daemon=True).start()
"""

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session", autouse=True)
def namespaces_work() -> None:
    av = NamespaceBackend().probe()
    if not av.ok:
        msg = f"namespace backend unavailable: {av.detail} {av.missing}"
        if CI:
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)


@dataclass
class Bottle:
    backend: NamespaceBackend
    spec: BottleSpec
    target: NamespaceTarget
    sidecar: subprocess.Popen[bytes]
    host_home: Path

    def sh(self, script: str) -> subprocess.CompletedProcess[str]:
        r = self.target.run(["sh", "-c", script])
        return subprocess.CompletedProcess(script, r.returncode, r.stdout, r.stderr)


@pytest.fixture
def bottle(tmp_path: Path) -> Iterator[Bottle]:
    """A bottle whose 'egress' is a stand-in that answers `PONG` (enough to tell
    whether the sidecar path is up), with a fake host HOME full of secrets."""
    host_home = tmp_path / "host-home"
    (host_home / ".ssh").mkdir(parents=True)
    (host_home / ".ssh" / "id_ed25519").write_text("FAKE-PRIVATE-KEY\n")
    (host_home / ".aws").mkdir()
    (host_home / ".aws" / "credentials").write_text("[default]\nkey=FAKE\n")
    ws = tmp_path / "ws"
    ws.mkdir()
    if os.geteuid() == 0:  # a root launcher refuses a root-owned workspace
        os.chown(ws, 1000, 1000)
    state = tmp_path / "state"
    sock = state / "sockets" / "egress.sock"
    spec = BottleSpec(
        slug="escape-test",
        state_dir=state,
        workspace_mode="mount",
        workspace_path=str(ws),
        sidecars=(SidecarLink("egress", sock, 3128),),
    )
    be = NamespaceBackend()
    target = be.prepare(spec)
    # A stand-in sidecar on the bottle's socket: answers PONG to every connection.
    # Plain Python rather than socat, which a fresh machine does not have.
    side = subprocess.Popen(
        [sys.executable, "-c", PONG_SERVER, str(sock)],
        stdout=subprocess.PIPE, start_new_session=True, text=True,
    )  # fmt: skip
    assert side.stdout is not None and side.stdout.readline().strip() == "READY"
    yield Bottle(be, spec, target, side, host_home)
    side.kill()
    side.wait()
    shutil.rmtree(state, ignore_errors=True)
