"""`resumable` stops what a launcher killed outright left running: its sidecars, found by
the pids it recorded, and only while they still work in the bottle's sockets dir."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from bot_bottle.launch import resumable
from bot_bottle.state.store import StateStore


def _sleeper(cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "60"], cwd=cwd, start_new_session=True)


def test_leftover_sidecars_are_stopped_and_nothing_else(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "home")
    meta = store.create(agent="a", bottle="b", backend="namespace", manifest_path="m",
                        manifest_digest="d")  # fmt: skip
    sockets = store.dir(meta.slug) / "sockets"
    sockets.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    sidecar, stranger, launcher = _sleeper(sockets), _sleeper(elsewhere), _sleeper(sockets)
    try:
        launcher.kill()  # the launcher is dead: the bottle is not running
        launcher.wait()
        store.update(meta.slug, status="running", pids={
            "launcher": launcher.pid, "egress": sidecar.pid, "git-gate": stranger.pid})  # fmt: skip
        resumable(store, meta.slug)
        assert sidecar.wait(timeout=10) != 0
        assert stranger.poll() is None  # a recorded pid that is no longer a sidecar here
    finally:
        for p in (sidecar, stranger):
            p.kill()
            p.wait()


def test_a_pid_now_held_by_another_process_is_not_signalled(tmp_path: Path) -> None:
    # The recorded sidecar is gone and its pid went to a process that also works in the
    # sockets dir (after a reboot, say): its start time is not the recorded one.
    store = StateStore(tmp_path / "home")
    meta = store.create(agent="a", bottle="b", backend="namespace", manifest_path="m",
                        manifest_digest="d")  # fmt: skip
    sockets = store.dir(meta.slug) / "sockets"
    sockets.mkdir()
    taker, launcher = _sleeper(sockets), _sleeper(sockets)
    try:
        launcher.kill()
        launcher.wait()
        store.update(meta.slug, status="running",
                     pids={"launcher": launcher.pid, "egress": taker.pid})  # fmt: skip
        path = store.dir(meta.slug) / "metadata.json"
        raw = json.loads(path.read_text())
        boot, ticks = raw["started"]["egress"].split(":")
        raw["started"]["egress"] = f"{boot}:{int(ticks) - 100}"
        path.write_text(json.dumps(raw))
        resumable(store, meta.slug)
        with pytest.raises(subprocess.TimeoutExpired):  # a signal would have ended it
            taker.wait(timeout=1)
    finally:
        taker.kill()
        taker.wait()
