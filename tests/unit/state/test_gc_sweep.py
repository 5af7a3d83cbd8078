"""gc's sweep of what killed launches leave, without Docker: the bottle's processes,
its state (or, for a kept bottle, a `stopped` mark), and half-written temporaries."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bot_bottle.backends.docker.gc import collect
from bot_bottle.state.store import StateStore


def _crashed(store: StateStore, keep: bool) -> str:
    """A bottle whose launcher died: status running, a dead launcher pid."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    meta = store.create(agent="a", bottle="b", backend="namespace", manifest_path="/m.yaml",
                        manifest_digest="sha256:0")  # fmt: skip
    store.update(meta.slug, status="running", pids={"launcher": int(dead)},
                 extra={"keep": keep})  # fmt: skip
    return meta.slug


def test_a_crashed_bottles_processes_and_state_go(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    slug = _crashed(store, keep=False)
    sockets = store.dir(slug) / "sockets"
    sockets.mkdir()
    (sockets / "egress.sock").touch()
    # A sidecar runs as `python -m bot_bottle...`: this one says so, and sleeps.
    # (It says it runs first: an exec's first instant shows an empty command line.)
    orphan = subprocess.Popen([sys.executable, "-c", "print(flush=True); import time; time.sleep(300)",
                               "-m", "bot_bottle.sidecars.egress"], cwd=sockets,
                              start_new_session=True, stdout=subprocess.PIPE)  # fmt: skip
    assert orphan.stdout is not None and orphan.stdout.readline() == b"\n"
    stranger = subprocess.Popen(["sleep", "300"], cwd=sockets, start_new_session=True)
    try:
        removed = collect(store=store, orphans=False)
        said = {(r.kind, r.name) for r in removed}
        assert ("process", f"{orphan.pid} (egress)") in said, said
        assert stranger.poll() is None, "a process of the user that only works there"
        assert ("socket", str(sockets / "egress.sock")) in said, said
        assert ("state", slug) in said
        assert orphan.wait(5) is not None
        assert not store.dir(slug).exists()
        assert collect(store=store, orphans=False) == []
    finally:
        orphan.kill()
        orphan.wait()
        orphan.stdout.close()
        stranger.kill()
        stranger.wait()


def test_a_crashed_kept_bottle_is_stopped_not_removed(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    slug = _crashed(store, keep=True)
    removed = collect(store=store, orphans=False)
    assert [(r.kind, r.name) for r in removed] == [("note", slug)]
    assert "bot-bottle resume" in removed[0].reason
    meta = store.load(slug)
    assert meta.status == "stopped" and meta.pids == {}


def test_a_live_launch_is_never_touched(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    meta = store.create(agent="a", bottle="b", backend="namespace", manifest_path="/m.yaml",
                        manifest_digest="sha256:0")  # fmt: skip
    assert meta.pids == {"launcher": os.getpid()}  # recorded from the very start
    assert collect(store=store, orphans=False) == []
    assert store.dir(meta.slug).exists()


def test_temporaries_of_dead_writers_go(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    snap = tmp_path / "snapshots"
    (snap / ".abc.999999999.tmp" / "skills").mkdir(parents=True)
    (snap / f".def.{os.getpid()}.tmp").mkdir()  # its writer is alive: stays
    (tmp_path / "cache" / "plans").mkdir(parents=True)
    (tmp_path / "cache" / "plans" / "k.999999999.tmp").write_text("half")
    removed = collect(store=store, orphans=False)
    assert sorted(r.name for r in removed if r.kind == "temp") == [
        str(tmp_path / "cache" / "plans" / "k.999999999.tmp"),
        str(snap / ".abc.999999999.tmp"),
    ]
    assert (snap / f".def.{os.getpid()}.tmp").exists()


def test_only_a_bwrap_naming_the_state_dir_itself_is_stopped(tmp_path: Path) -> None:
    # Another bottle's state dir may begin with this one's name (agent `a-moss-1234`
    # makes slugs `a-moss-1234-...`): its sandbox is not this bottle's.
    store = StateStore(tmp_path)
    slug = _crashed(store, keep=False)
    other = store.bottles / f"{slug}-pine-5678"

    def sandbox(arg: Path) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(["bwrap", "-c", "print(flush=True); import time; time.sleep(300)",
                              str(arg)], executable=sys.executable, stdout=subprocess.PIPE,
                             start_new_session=True)  # fmt: skip
        assert p.stdout is not None and p.stdout.readline() == b"\n"
        return p

    ours, theirs = sandbox(store.dir(slug) / "home"), sandbox(other / "home")
    try:
        said = {(r.kind, r.name) for r in collect(store=store, orphans=False)}
        assert ("process", f"{ours.pid} (bwrap)") in said, said
        assert ours.wait(5) is not None
        assert theirs.poll() is None, "gc stopped another bottle's sandbox"
    finally:
        for p in (ours, theirs):
            p.kill()
            p.wait()
            assert p.stdout is not None
            p.stdout.close()
