"""`stop` and `gc` after a crash or a reboot, when the pids a bottle recorded have been
handed to unrelated processes of the same user: those processes must survive.

The state is planted as a crash leaves it (status `running`), with each pid now held
by a `sleep` of this test in its own session, and a start time that is not that
sleep's (the recorded process started at another moment, so it was another process).
A `sleep` working in the bottle's state dir that no metadata names stays too: a
process is not bot-bottle's because of where it stands. gc still collects both
bottles, since neither launcher is alive.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import base_env, bb

from bot_bottle.state.store import StateStore

pytestmark = pytest.mark.e2e


def _boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def _start_ticks(pid: int) -> int:
    """Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])


def _another_process(pid: int) -> str:
    """An identity for `pid` that is not its holder's: this boot, an earlier start."""
    return f"{_boot_id()}:{_start_ticks(pid) - 1000}"


def _dead_pid() -> int:
    p = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                       capture_output=True, text=True, check=True)  # fmt: skip
    return int(p.stdout)


def _plant(store: StateStore, pids: dict[str, int], started: dict[str, str]) -> str:
    """A bottle as a killed launcher leaves it: `running`, with these pids."""
    meta = store.create(agent="a", bottle="b", backend="namespace", manifest_path="/m.yaml",
                        manifest_digest="sha256:0")  # fmt: skip
    path = store.dir(meta.slug) / "metadata.json"
    raw = json.loads(path.read_text())
    raw.update(status="running", pids=pids, started=started)
    path.write_text(json.dumps(raw))
    (store.dir(meta.slug) / "sockets").mkdir()
    return meta.slug


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        p.kill()
        p.wait()


def _alive(p: subprocess.Popen[bytes]) -> bool:
    """Still running a moment later (a signal sent just before would have ended it)."""
    try:
        p.wait(timeout=0.5)
    except subprocess.TimeoutExpired:
        return True
    return False


def _sleep(sleepers: list[subprocess.Popen[bytes]], cwd: Path) -> subprocess.Popen[bytes]:
    p = subprocess.Popen(["sleep", "300"], cwd=cwd, start_new_session=True)
    sleepers.append(p)
    return p


def test_stop_leaves_processes_that_took_the_recorded_pids(
    tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    env = base_env(tmp_path)
    store = StateStore(Path(env["BOT_BOTTLE_HOME"]))
    launcher, egress = _sleep(sleepers, tmp_path), _sleep(sleepers, tmp_path)
    slug = _plant(store, {"launcher": launcher.pid, "egress": egress.pid},
                  {"launcher": _another_process(launcher.pid),
                   "egress": _another_process(egress.pid)})  # fmt: skip
    r = bb(["stop", slug], env, tmp_path, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert _alive(launcher), "stop signalled a process that took the launcher's pid"
    assert _alive(egress), "stop signalled a process that took a sidecar's pid"


def test_gc_leaves_processes_that_are_not_its_own(
    tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    env = {**base_env(tmp_path), "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    store = StateStore(Path(env["BOT_BOTTLE_HOME"]))
    # Bottle one: its launcher is dead; its sidecar's pid went to a sleep working in
    # the sockets dir, and another sleep works in its state dir, recorded nowhere.
    dead = _dead_pid()
    crashed = _plant(store, {"launcher": dead}, {"launcher": f"{_boot_id()}:1"})
    sockets = store.dir(crashed) / "sockets"
    egress, stray = _sleep(sleepers, sockets), _sleep(sleepers, store.dir(crashed))
    store_meta = json.loads((store.dir(crashed) / "metadata.json").read_text())
    store_meta["pids"]["egress"] = egress.pid
    store_meta["started"]["egress"] = _another_process(egress.pid)
    (store.dir(crashed) / "metadata.json").write_text(json.dumps(store_meta))
    # Bottle two: its launcher's pid went to a sleep; the launcher itself is gone.
    taken = _sleep(sleepers, tmp_path)
    reused = _plant(store, {"launcher": taken.pid}, {"launcher": _another_process(taken.pid)})
    r = bb(["gc"], env, tmp_path, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    print(r.stdout)
    assert _alive(egress), "gc killed a process that took a sidecar's pid"
    assert _alive(stray), "gc killed a process only because it works in a state dir"
    assert _alive(taken), "gc killed a process that took a launcher's pid"
    assert not store.dir(crashed).exists(), r.stdout
    assert not store.dir(reused).exists(), "a launcher pid held by another process kept " + (
        "the crashed bottle from being collected"
    )
