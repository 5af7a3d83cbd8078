"""A recorded pid names the process it was recorded for, or nobody: its identity (boot
and start time) is compared before a liveness answer or a signal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot_bottle.errors import DamagedState
from bot_bottle.state import process_identity as pi
from bot_bottle.state.store import StateStore


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    p = subprocess.Popen(["sleep", "60"], start_new_session=True)
    yield p
    p.kill()
    p.wait()


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def _ticks(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])


def test_identity_is_boot_and_start_time(sleeper: subprocess.Popen[bytes]) -> None:
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert pi.identity(sleeper.pid) == f"{boot}:{_ticks(sleeper.pid)}"
    assert pi.identity(_dead_pid()) is None


def test_running_only_while_the_recorded_process_holds_the_pid(
    sleeper: subprocess.Popen[bytes],
) -> None:
    me = pi.identity(sleeper.pid)
    assert me is not None
    boot, ticks = me.split(":")
    assert pi.running(sleeper.pid, me)
    assert not pi.running(sleeper.pid, f"{boot}:{int(ticks) - 1}")  # started earlier
    assert not pi.running(sleeper.pid, f"{'0' * 8}-0000-0000-0000-{'0' * 12}:{ticks}")  # reboot
    assert not pi.running(_dead_pid(), me)
    assert pi.running(sleeper.pid, None)  # older state: any live process errs toward alive


def test_a_zombie_is_not_running() -> None:
    p = subprocess.Popen(["true"])
    me = pi.identity(p.pid)
    os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped
    try:
        assert not pi.running(p.pid, me)
    finally:
        p.wait()


def test_no_signal_for_another_process(sleeper: subprocess.Popen[bytes]) -> None:
    boot, ticks = str(pi.identity(sleeper.pid)).split(":")
    assert not pi.signal_recorded(sleeper.pid, f"{boot}:{int(ticks) + 5}", signal.SIGTERM)
    assert pi.hold(sleeper.pid, f"{boot}:{int(ticks) + 5}") is None
    assert not pi.signal_recorded(_dead_pid(), f"{boot}:{ticks}", signal.SIGTERM)
    for nobody in (0, -1):  # kill(0) and kill(-1) would reach a whole group, or everyone
        assert not pi.signal_recorded(nobody, None, signal.SIGTERM, group=True)
        assert not pi.running(nobody, f"{boot}:{ticks}")
    assert sleeper.poll() is None
    assert pi.signal_recorded(sleeper.pid, pi.identity(sleeper.pid), signal.SIGTERM)
    assert sleeper.wait(5) == -signal.SIGTERM


def test_older_state_signals_only_bot_bottle_processes(sleeper: subprocess.Popen[bytes]) -> None:
    assert not pi.signal_recorded(sleeper.pid, None, signal.SIGTERM)
    assert sleeper.poll() is None
    # It says it runs (an exec's first instant shows an empty command line), then sleeps.
    ours = subprocess.Popen([sys.executable, "-c", "print(flush=True); import time; time.sleep(60)",
                             "-m", "bot_bottle.sidecars.egress"], stdout=subprocess.PIPE)  # fmt: skip
    assert ours.stdout is not None and ours.stdout.readline() == b"\n"
    try:
        assert pi.is_bot_bottle(ours.pid) and not pi.is_bot_bottle(sleeper.pid)
        assert pi.signal_recorded(ours.pid, None, signal.SIGTERM)
        assert ours.wait(5) == -signal.SIGTERM
    finally:
        ours.kill()
        ours.wait()
        ours.stdout.close()


def test_a_group_is_signalled_through_its_leader() -> None:
    leader = subprocess.Popen(["sh", "-c", "sleep 60 & echo $!; wait"], stdout=subprocess.PIPE,
                              start_new_session=True)  # fmt: skip
    assert leader.stdout is not None
    member = int(leader.stdout.readline())
    try:
        assert pi.signal_recorded(leader.pid, pi.identity(leader.pid), signal.SIGTERM, group=True)
        assert leader.wait(5) is not None
        end = time.monotonic() + 5
        while pi.running(member, None) and time.monotonic() < end:
            time.sleep(0.02)
        assert not pi.running(member, None)
    finally:
        leader.kill()
        leader.wait()
        leader.stdout.close()


def test_store_records_each_pid_with_its_identity(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    store = StateStore(tmp_path)
    meta = store.create(agent="a", bottle="b", backend="namespace", manifest_path="/m",
                        manifest_digest="d")  # fmt: skip
    assert meta.started == {"launcher": pi.identity(os.getpid())}
    gone = _dead_pid()
    meta = store.update(meta.slug, pids={**meta.pids, "egress": sleeper.pid, "git-gate": gone})
    assert meta.started["egress"] == pi.identity(sleeper.pid)
    assert "git-gate" not in meta.started  # gone before it was recorded: never signalled
    # An update without pids keeps the identities recorded: the pid may have changed
    # hands since, and its new holder's identity must not be taken for the old one's.
    raw = json.loads((store.dir(meta.slug) / "metadata.json").read_text())
    raw["started"]["egress"] = "planted:1"
    (store.dir(meta.slug) / "metadata.json").write_text(json.dumps(raw))
    meta = store.update(meta.slug, status="running", extra={"k": 1})
    assert meta.started["egress"] == "planted:1"
    # Pids given are processes running now (a resumed launcher may get its old pid).
    meta = store.update(meta.slug, pids={"launcher": os.getpid(), "egress": sleeper.pid})
    assert meta.started["egress"] == pi.identity(sleeper.pid)
    meta = store.update(meta.slug, pids={"launcher": meta.pids["launcher"]})
    assert set(meta.started) == {"launcher"}
    assert store.update(meta.slug, pids={}).started == {}


def test_older_metadata_loads_and_a_bad_one_is_damaged(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    meta = store.create(agent="a", bottle="b", backend="namespace", manifest_path="/m",
                        manifest_digest="d")  # fmt: skip
    path = store.dir(meta.slug) / "metadata.json"
    raw = json.loads(path.read_text())
    del raw["started"]
    path.write_text(json.dumps(raw))
    assert store.load(meta.slug).started == {}
    path.write_text(json.dumps({**raw, "started": {"launcher": 5}}))
    with pytest.raises(DamagedState):
        store.load(meta.slug)
