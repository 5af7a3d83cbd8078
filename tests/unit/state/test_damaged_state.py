"""A state file that is truncated, not JSON, or not the shape bot-bottle writes: one
error naming the file and the fix; the other bottles unaffected (issue 14, item 4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot_bottle.errors import DamagedState, StateError
from bot_bottle.sidecars.egress.audit import AuditWriter, read_audit, verify_chain
from bot_bottle.state.approval import ApprovalStore
from bot_bottle.state.store import StateStore

DAMAGE = {
    "truncated": lambda text: text[: len(text) // 2],
    "empty": lambda text: "",
    "not json": lambda text: "\x00\x01garbage",
    "a list": lambda text: "[1, 2]",
    "fields missing": lambda text: json.dumps({"slug": json.loads(text)["slug"]}),
    "wrong types": lambda text: json.dumps({**json.loads(text), "pids": {"egress": "1"}}),
}


def _bottles(store: StateStore, n: int) -> list[str]:
    return [
        store.create(agent="a", bottle="b", backend="namespace", manifest_path="/m.yaml",
                     manifest_digest="sha256:0").slug
        for _ in range(n)
    ]  # fmt: skip


@pytest.mark.parametrize("how", DAMAGE)
def test_damaged_metadata_names_the_file_and_the_fix(tmp_path: Path, how: str) -> None:
    store = StateStore(tmp_path)
    bad, good = _bottles(store, 2)
    meta = store.dir(bad) / "metadata.json"
    meta.write_text(DAMAGE[how](meta.read_text()))
    with pytest.raises(DamagedState) as e:
        store.load(bad)
    assert e.value.path == str(meta) and str(meta) in str(e.value)
    assert f"bot-bottle rm {bad}" in e.value.fix
    assert [m.slug for m in store.all()] == [good]
    assert [d.path for d in store.damaged()] == [str(meta)]


def test_missing_metadata_in_a_bottle_dir_is_damage_not_absence(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    (slug,) = _bottles(store, 1)
    (store.dir(slug) / "metadata.json").unlink()
    with pytest.raises(DamagedState):
        store.load(slug)
    with pytest.raises(StateError, match="no bottle named"):
        store.load("a-never-there-0000")


def test_damaged_approvals_name_the_file_and_trust_rewrites_it(tmp_path: Path) -> None:
    approvals = ApprovalStore(tmp_path)
    approvals.dir.mkdir()
    f = approvals.file("/w/bot-bottle.yaml")
    f.write_text('{"manifest": "/w/bot-bottle.yaml", "agents": {"a": {"dig')
    with pytest.raises(DamagedState) as e:
        approvals.entry("/w/bot-bottle.yaml", "a")
    assert str(f) in str(e.value) and "bot-bottle trust -f /w/bot-bottle.yaml" in e.value.fix
    assert approvals._load("/w/bot-bottle.yaml", damaged_ok=True) == {}


def test_audit_log_cut_short_keeps_new_records_whole(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    with AuditWriter(log, "b") as w:
        for i in range(3):
            w.write({"path": f"/{i}"})
    data = log.read_bytes()
    # Cut inside the last line, and a byte that is not UTF-8 where the disk failed.
    log.write_bytes(data[: data.rindex(b'"path"')] + b"\xc3")
    assert verify_chain(log) == (False, 3)  # the cut line, not a crash
    with AuditWriter(log, "b") as w:
        w.write({"path": "/after"})
    recs = list(read_audit(log))
    assert [r.get("path") for r in recs[:2]] == ["/0", "/1"]
    assert "_bad" in recs[2] and recs[3]["path"] == "/after"  # on its own line


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BOT_BOTTLE_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "bot_bottle", *args], capture_output=True,
                          text=True, env=env, cwd=home, check=False)  # fmt: skip


def test_cli_lists_the_others_and_removes_the_damaged_one(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    bad, good = _bottles(store, 2)
    meta = store.dir(bad) / "metadata.json"
    meta.write_text(meta.read_text()[:40])
    ls = _cli("ls", "--json", home=tmp_path)
    assert ls.returncode == 0, ls.stderr
    rows = {r["slug"]: r["status"] for r in json.loads(ls.stdout)}
    assert rows == {good: "created", bad: "damaged"}
    assert str(meta) in ls.stderr and f"bot-bottle rm {bad}" in ls.stderr
    info = _cli("info", bad, home=tmp_path)
    assert info.returncode == 2 and "Traceback" not in info.stderr
    assert str(meta) in info.stderr and f"bot-bottle rm {bad}" in info.stderr
    assert _cli("info", good, home=tmp_path).returncode == 0
    # A sidecar of the damaged bottle still runs (in its sockets dir): rm stops it too,
    # and only it: another process of the user working there is not bot-bottle's.
    (store.dir(bad) / "sockets").mkdir()
    sidecar = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)",
                                "-m", "bot_bottle.sidecars.fake"], cwd=store.dir(bad) / "sockets")  # fmt: skip
    stranger = subprocess.Popen(["sleep", "300"], cwd=store.dir(bad) / "sockets")
    try:
        rm = _cli("rm", bad, home=tmp_path)
        assert rm.returncode == 0, rm.stderr
        assert sidecar.wait(5) is not None
        assert stranger.poll() is None
    finally:
        sidecar.kill()
        stranger.kill()
        stranger.wait()
    assert [m.slug for m in store.all()] == [good] and store.damaged() == []


def test_cli_ls_survives_a_damaged_approval_file(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    _bottles(store, 1)
    approvals = ApprovalStore(tmp_path)
    approvals.dir.mkdir()
    approvals.file("/m.yaml").write_text("{")
    ls = _cli("ls", "--json", home=tmp_path)
    assert ls.returncode == 0, ls.stderr
    assert json.loads(ls.stdout)[0]["approval"] == "damaged"
