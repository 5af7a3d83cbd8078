"""A launcher's teardown returns only once its sidecars are gone (issue 14, item 2): a
warm sidecar is not the launcher's child (the helper forked it), so `waitpid` cannot
wait for it; it must still be gone, its last audit records written, when the launcher
exits. Real processes, not our children, in their own sessions."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot_bottle.launch import Bottle, stop_sidecars
from bot_bottle.sidecars.process import SidecarHandle, alive, stop_all

pytestmark = pytest.mark.integration

# Forks a grandchild in its own session (so it is not our child, as a warm sidecar is
# not the launcher's), prints its pid, and exits. The grandchild handles SIGTERM by
# writing its "last record" after DELAY seconds, or ignores it when DELAY is "ignore".
SIDECAR = r"""
import os, signal, sys, time
delay, out = sys.argv[1], sys.argv[2]
if os.fork():
    os._exit(0)
os.setsid()
def term(*_):
    time.sleep(float(delay))
    with open(out, "a") as f:
        f.write("last record\n")
    os._exit(0)
signal.signal(signal.SIGTERM, signal.SIG_IGN if delay == "ignore" else term)
print(os.getpid(), flush=True)
while True:
    time.sleep(1)
"""


def start(tmp: Path, delay: str) -> int:
    p = subprocess.Popen([sys.executable, "-c", SIDECAR, delay, str(tmp / "audit")],
                         stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert p.stdout is not None
    pid = int(p.stdout.readline())
    p.wait(10)
    return pid


def test_teardown_returns_once_a_warm_sidecar_is_gone(tmp_path: Path) -> None:
    pid = start(tmp_path, "0.3")
    bottle = Bottle(meta=None, spec=None, backend=None,  # type: ignore[arg-type]
                    sidecars=[SidecarHandle("egress", pid, tmp_path / "s.sock", "warm")])  # fmt: skip
    stop_sidecars(bottle)  # tells it; run_bottle then waits, as here, before it exits
    for stopping in bottle.stopping:
        stopping.wait()
    assert not alive(pid)
    assert (tmp_path / "audit").read_text() == "last record\n"


def test_a_sidecar_deaf_to_sigterm_is_killed(tmp_path: Path) -> None:
    pid = start(tmp_path, "ignore")
    t0 = time.monotonic()
    stop_all([pid], timeout=0.3)
    assert not alive(pid)
    assert time.monotonic() - t0 < 5


def test_our_own_child_is_reaped(tmp_path: Path) -> None:
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                         start_new_session=True)  # fmt: skip
    stop_all([p.pid])
    with pytest.raises(ChildProcessError):
        os.waitpid(p.pid, os.WNOHANG)
