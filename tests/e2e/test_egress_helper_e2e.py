"""The per-user egress helper (issue 14, item 2): the fast path is the default. The first
run starts the helper, later runs reuse it, it holds none of the launcher's variables,
it goes away when idle, and without it (turned off, killed, stale) runs still start."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from e2e_support import base_env, bb, trust

from bot_bottle.sidecars.egress import helper

pytestmark = pytest.mark.e2e

MANIFEST = """
bottles:
  b:
    agent_provider: {template: command, command: [sh, -c, "exit 0"]}
    workspace: none
    backend: namespace
agents:
  a: {bottle: b}
"""
SECRET = "bb-helper-test-s3cr3t-value"


def setup(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "bot-bottle.yaml").write_text(MANIFEST)
    env = {**base_env(tmp_path), "SOME_TOKEN": SECRET}
    trust(env, tmp_path)
    return env


def run_kept(env: dict[str, str], cwd: Path) -> str:
    """Run once with --keep; return how its egress sidecar started (warm or cold)."""
    r = bb(["run", "a", "-y", "--keep"], env, cwd, timeout=120)
    assert r.returncode == 0, r.stderr
    metas = sorted(
        (Path(env["BOT_BOTTLE_HOME"]) / "bottles").glob("*/metadata.json"),
        key=lambda p: p.stat().st_mtime,
    )
    meta = json.loads(metas[-1].read_text())
    assert bb(["rm", meta["slug"]], env, cwd).returncode == 0
    return str(meta["extra"]["sidecar_mode"])


def run_dir(env: dict[str, str]) -> Path:
    return Path(env["BOT_BOTTLE_HOME"]) / "run"


def helper_pids(env: dict[str, str]) -> list[int]:
    pids = []
    for sock in run_dir(env).glob(helper.SOCKET_GLOB):
        pid = helper._peer_pid(sock)
        if pid is not None:
            pids.append(pid)
    return pids


def test_first_run_starts_the_helper_and_the_next_reuses_it(tmp_path: Path) -> None:
    env = setup(tmp_path)
    assert helper_pids(env) == []
    assert run_kept(env, tmp_path) == "warm"
    (pid,) = helper_pids(env)
    assert run_kept(env, tmp_path) == "warm"
    assert helper_pids(env) == [pid]
    # It outlives the launcher, so it keeps none of the launcher's variables.
    environ = Path(f"/proc/{pid}/environ").read_bytes()
    assert SECRET.encode() not in environ
    assert b"BOT_BOTTLE_HOME" not in environ
    doctor = bb(["doctor"], env, tmp_path)
    assert f"egress helper: running (pid {pid}" in doctor.stdout, doctor.stdout
    stop = bb(["egress", "warm", "--stop"], env, tmp_path)
    assert f"stopped egress helper (pid {pid})" in stop.stdout
    assert helper_pids(env) == []


def test_an_idle_helper_exits_and_removes_its_socket(tmp_path: Path) -> None:
    env = {**setup(tmp_path), helper.IDLE_ENV: "1"}
    assert run_kept(env, tmp_path) == "warm"
    deadline = time.monotonic() + 20
    while list(run_dir(env).glob(helper.SOCKET_GLOB)):
        assert time.monotonic() < deadline, "the idle helper never went away"
        time.sleep(0.2)
    assert "not running" in bb(["doctor"], env, tmp_path).stdout
    assert run_kept(env, tmp_path) == "warm"  # and the next run starts a new one


def test_turned_off_every_run_starts_cold(tmp_path: Path) -> None:
    env = {**setup(tmp_path), helper.ENABLED_ENV: "off"}
    assert run_kept(env, tmp_path) == "cold"
    assert helper_pids(env) == []
    assert "egress helper: off" in bb(["doctor"], env, tmp_path).stdout


def test_a_killed_helper_leaves_a_stale_socket_the_next_run_replaces(tmp_path: Path) -> None:
    env = setup(tmp_path)
    assert run_kept(env, tmp_path) == "warm"
    (pid,) = helper_pids(env)
    os.kill(pid, signal.SIGKILL)
    assert list(run_dir(env).glob(helper.SOCKET_GLOB)), "the stale socket should remain"
    assert run_kept(env, tmp_path) == "warm"
    (new,) = helper_pids(env)
    assert new != pid


def test_launchers_starting_at_once_share_one_helper(tmp_path: Path) -> None:
    env = setup(tmp_path)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bot_bottle", "run", "a", "-y"],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for p in procs:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    assert len(helper_pids(env)) == 1
    # One helper. Its forked children (a bottle's sidecar told to stop as its launcher
    # exits, a liveness probe's connection) carry the same command line for a moment.
    deadline = time.monotonic() + 10
    while len(zygotes := [p for p in Path("/proc").glob("[0-9]*")
                          if _runs_zygote_in(p, run_dir(env))]) > 1:  # fmt: skip
        assert time.monotonic() < deadline, [_status(p) for p in zygotes]
        time.sleep(0.1)
    assert len(zygotes) == 1, zygotes


def _status(proc: Path) -> str:
    try:
        fields = {k: v.strip() for k, _, v in (line.partition(":") for line in
                  (proc / "status").read_text().splitlines())}  # fmt: skip
    except OSError:
        return f"{proc.name}: gone"
    return f"{proc.name}: ppid {fields.get('PPid')} state {fields.get('State')}"


def _runs_zygote_in(proc: Path, where: Path) -> bool:
    try:
        argv = (proc / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"bot_bottle.sidecars.egress.zygote" in argv and any(
        a.startswith(str(where).encode()) for a in argv
    )
