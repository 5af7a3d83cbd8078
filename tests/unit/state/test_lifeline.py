"""`sidecars.lifeline`: a sidecar sends itself SIGTERM once the launcher it was given is
gone, at once if it already is, and follows nothing without one. Real processes: a
`sleep` stands for the launcher, a Python child for the sidecar."""

from __future__ import annotations

import errno
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bot_bottle.sidecars import lifeline
from bot_bottle.sidecars.egress.request import EgressRequest
from bot_bottle.state.process_identity import identity

# The sidecar: follows the launcher in its environment, then waits to be told to stop.
SIDECAR = """
import os, signal, sys, time
from bot_bottle.sidecars import lifeline
signal.signal(signal.SIGTERM, lambda *_: (print("stopped", flush=True), sys.exit(0)))
lifeline.follow(os.environ)
print("following", flush=True)
time.sleep(float(sys.argv[1]))
print("timed out", flush=True)
"""


def _sidecar(token: str | None, wait: float = 30) -> subprocess.Popen[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)}
    if token is not None:
        env[lifeline.ENV] = token
    return subprocess.Popen([sys.executable, "-c", SIDECAR, str(wait)], env=env,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip


def test_a_sidecar_stops_when_its_launcher_is_killed() -> None:
    launcher = subprocess.Popen(["sleep", "60"])
    try:
        sidecar = _sidecar(lifeline.token(launcher.pid, identity(launcher.pid)))
        assert sidecar.stdout is not None
        assert sidecar.stdout.readline() == "following\n"
        time.sleep(0.3)
        assert sidecar.poll() is None  # the launcher lives: so does its sidecar
        launcher.kill()
        launcher.wait()
        out, _ = sidecar.communicate(timeout=10)
        assert out == "stopped\n" and sidecar.returncode == 0
    finally:
        launcher.kill()


def test_a_launcher_gone_before_the_sidecar_looked_stops_it_at_once() -> None:
    launcher = subprocess.Popen(["true"])
    pid, ident = launcher.pid, identity(launcher.pid)
    launcher.wait()
    out, _ = _sidecar(lifeline.token(pid, ident)).communicate(timeout=10)
    assert out.endswith("stopped\n"), out


def test_a_pid_now_held_by_another_process_is_not_the_launcher() -> None:
    other = subprocess.Popen(["sleep", "60"])
    try:
        # The recorded launcher had this pid in another moment: it is gone.
        out, _ = _sidecar(lifeline.token(other.pid, "another-boot:1")).communicate(timeout=10)
        assert out.endswith("stopped\n"), out
    finally:
        other.kill()


def test_without_a_launcher_nothing_is_followed() -> None:
    out, _ = _sidecar(None, wait=0.5).communicate(timeout=10)
    assert out == "following\ntimed out\n"


def test_without_pidfds_it_looks_once_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where pidfd_open fails (an old kernel, a filter refusing it), a live launcher is
    polled, not taken for gone (which would stop every sidecar at its start)."""
    launcher = subprocess.Popen(["sleep", "60"])
    sent: list[int] = []

    def no_pidfd(_pid: int) -> int:
        raise OSError(errno.ENOSYS, "pidfd_open")

    monkeypatch.setattr(lifeline.os, "pidfd_open", no_pidfd)
    monkeypatch.setattr(lifeline, "_stop", lambda: sent.append(signal.SIGTERM))
    monkeypatch.setattr(lifeline, "POLL", 0.05)
    try:
        t = threading.Thread(target=lifeline._wait, args=(launcher.pid, identity(launcher.pid)))
        t.start()
        time.sleep(0.3)
        assert sent == []  # alive: followed
        launcher.kill()
        launcher.wait()
        t.join(5)
        assert sent == [signal.SIGTERM]
    finally:
        launcher.kill()


def test_the_request_carries_the_launcher_to_the_sidecar(tmp_path: Path) -> None:
    req = EgressRequest(tmp_path / "r", tmp_path / "s", tmp_path / "a", tmp_path / "c",
                        tmp_path / "l", {"EGRESS_TOKEN_0": "t"}, launcher="7:boot:9")  # fmt: skip
    assert req.process_env()[lifeline.ENV] == "7:boot:9"
    assert (
        lifeline.ENV
        not in EgressRequest(
            tmp_path / "r", tmp_path / "s", tmp_path / "a", tmp_path / "c", tmp_path / "l", {}
        ).process_env()
    )
