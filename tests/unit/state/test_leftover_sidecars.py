"""`resumable` stops what a launcher killed outright left running: its sidecars, found by
the pids it recorded, and only while they still work in the bottle's sockets dir."""

from __future__ import annotations

import subprocess
from pathlib import Path

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
