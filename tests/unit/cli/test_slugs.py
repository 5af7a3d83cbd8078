"""Slugs are findable (issue 12, item 2): `logs` with no slug (or `--last`) shows the
last bottle of this directory's manifest, removed or not, and says which one it is;
`ls --all` lists removed bottles whose logs remain."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bot_bottle.state.store import StateStore

MANIFEST = "bottles: {dev: {workspace: none}}\nagents: {a: {bottle: dev}}\n"


def bb(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BOT_BOTTLE_HOME": str(home)}
    env.pop("BOT_BOTTLE_MANIFEST", None)
    return subprocess.run([sys.executable, "-m", "bot_bottle", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, check=False)  # fmt: skip


def _bottle(store: StateStore, manifest: Path, host: str, created: str, retire: bool) -> str:
    """A bottle of `manifest` whose audit log holds one denial of `host`."""
    meta = store.create(agent="a", bottle="dev", backend="namespace",
                        manifest_path=str(manifest), manifest_digest="sha256:x")  # fmt: skip
    meta.created = created
    store.save(meta)
    rec = {"ts": created, "decision": "deny", "method": "GET", "host": host, "path": "/",
           "rule": "no-route", "reason": f"{host} is not an allowed host"}  # fmt: skip
    StateStore.audit_log(store.dir(meta.slug)).write_text(json.dumps(rec) + "\n")
    if retire:
        store.retire(meta.slug)
    return meta.slug


def _setup(tmp_path: Path) -> tuple[Path, Path, StateStore, dict[str, str]]:
    home, here, there = tmp_path / "home", tmp_path / "here", tmp_path / "there"
    for d in (here, there):
        d.mkdir()
        (d / "bot-bottle.yaml").write_text(MANIFEST)
    store = StateStore(home)
    slugs = {
        "old": _bottle(store, here / "bot-bottle.yaml", "old.test", "2026-11-30T10:00:00+00:00",
                       retire=True),
        "last": _bottle(store, here / "bot-bottle.yaml", "last.test",
                        "2026-11-30T11:00:00+00:00", retire=True),
        "kept": _bottle(store, here / "bot-bottle.yaml", "kept.test",
                        "2026-11-30T09:00:00+00:00", retire=False),
        "other": _bottle(store, there / "bot-bottle.yaml", "other.test",
                         "2026-11-30T12:00:00+00:00", retire=True),
    }  # fmt: skip
    return home, here, store, slugs


def test_logs_without_a_slug_shows_the_last_bottle_of_this_manifest(tmp_path: Path) -> None:
    home, here, _, slugs = _setup(tmp_path)
    for args in (["logs"], ["logs", "--last"], ["logs", "--last", "--denied"]):
        r = bb(*args, cwd=here, home=home)
        assert r.returncode == 0, r.stderr
        assert "last.test" in r.stdout and "old.test" not in r.stdout, r.stdout
        assert "other.test" not in r.stdout  # another manifest's bottle, though newer
        assert slugs["last"] in r.stderr and "removed" in r.stderr, r.stderr
    r = bb("logs", "--last", "--json", cwd=tmp_path / "there", home=home)
    assert json.loads(r.stdout)["host"] == "other.test", r.stdout


def test_logs_last_with_a_slug_is_a_usage_error(tmp_path: Path) -> None:
    home, here, _, slugs = _setup(tmp_path)
    r = bb("logs", "--last", slugs["old"], cwd=here, home=home)
    assert r.returncode == 2 and "either" in r.stderr, r.stderr


def test_logs_with_no_bottle_of_this_manifest_says_so(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (tmp_path / "bot-bottle.yaml").write_text(MANIFEST)
    r = bb("logs", cwd=tmp_path, home=home)
    assert r.returncode == 2 and "no bottle of" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_ls_all_lists_removed_bottles_whose_logs_remain(tmp_path: Path) -> None:
    home, here, _, slugs = _setup(tmp_path)
    plain = json.loads(bb("ls", "--json", cwd=here, home=home).stdout)
    assert [b["slug"] for b in plain] == [slugs["kept"]]
    every = {b["slug"]: b for b in json.loads(bb("ls", "--all", "--json", cwd=here,
                                                   home=home).stdout)}  # fmt: skip
    assert set(every) == set(slugs.values())
    assert every[slugs["old"]]["status"] == "removed"
    assert every[slugs["kept"]]["status"] != "removed"
    table = bb("ls", "--all", cwd=here, home=home)
    assert slugs["other"] in table.stdout and "removed" in table.stdout, table.stdout


def test_a_removed_bottle_keeps_its_slug_reserved(tmp_path: Path) -> None:
    _, _, store, slugs = _setup(tmp_path)
    assert store.archived_metadata(slugs["old"]).is_file()
    assert store.load_any(slugs["old"]).status == "removed"


def test_logs_of_a_bottle_that_sent_nothing_says_so(tmp_path: Path) -> None:
    home, here = tmp_path / "home", tmp_path
    (here / "bot-bottle.yaml").write_text(MANIFEST)
    store = StateStore(home)
    meta = store.create(agent="a", bottle="dev", backend="namespace",
                        manifest_path=str(here / "bot-bottle.yaml"), manifest_digest="x")  # fmt: skip
    store.retire(meta.slug)
    r = bb("logs", cwd=here, home=home)
    assert r.returncode == 0 and "nothing has tried to leave it" in r.stderr, r.stderr
    assert bb("logs", "a-nosuch-0000", cwd=here, home=home).returncode == 2


def test_resume_of_a_bottle_with_a_relative_manifest_path_says_why(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = StateStore(home)
    meta = store.create(agent="a", bottle="dev", backend="namespace",
                        manifest_path="bot-bottle.yaml", manifest_digest="x")  # fmt: skip
    meta.manifest_path = "bot-bottle.yaml"  # as an earlier bot-bottle recorded it
    store.save(meta)
    r = bb("resume", meta.slug, "-y", cwd=tmp_path, home=home)
    assert r.returncode == 2 and "relative path" in r.stderr, r.stderr
