"""The state store: slugs, metadata round trips, damaged state, retiring a bottle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot_bottle.errors import StateError
from bot_bottle.state import store as store_mod
from bot_bottle.state.store import StateStore, home_dir


def make(tmp_path: Path) -> StateStore:
    return StateStore(tmp_path / "home")


def test_create_load_update_all(tmp_path: Path) -> None:
    s = make(tmp_path)
    meta = s.create(agent="coder", bottle="dev", backend="namespace", manifest_path="/m.yaml",
                    manifest_digest="sha256:x")  # fmt: skip
    assert meta.slug.startswith("coder-") and s.dir(meta.slug).stat().st_mode & 0o777 == 0o700
    assert s.load(meta.slug) == meta
    s.update(meta.slug, status="running", pids={"launcher": 1})
    assert s.load(meta.slug).status == "running"
    assert [m.slug for m in s.all()] == [meta.slug]


def test_unknown_and_damaged(tmp_path: Path) -> None:
    s = make(tmp_path)
    with pytest.raises(StateError, match="no bottle named"):
        s.load("nope")
    meta = s.create(agent="a", bottle="b", backend="namespace", manifest_path="m",
                    manifest_digest="d")  # fmt: skip
    (s.dir(meta.slug) / "metadata.json").write_text("{broken")
    with pytest.raises(StateError, match="damaged"):
        s.load(meta.slug)
    assert s.all() == []  # a damaged bottle does not break `ls`


def test_retire_keeps_the_audit_log_and_its_slug(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = make(tmp_path)
    monkeypatch.setattr(store_mod.secrets, "token_hex", lambda n: "beef")
    monkeypatch.setattr(store_mod.secrets, "choice", lambda seq: seq[0])
    first = s.create(
        agent="a", bottle="b", backend="namespace", manifest_path="m", manifest_digest="d"
    )
    s.audit_log(s.dir(first.slug)).write_text('{"kind":"request"}\n')
    s.retire(first.slug)
    assert not s.dir(first.slug).exists()
    assert s.find_audit_log(first.slug).read_text() == '{"kind":"request"}\n'
    # the only slug the generator can make is taken by the kept log: creation must not reuse it
    calls = iter(["beef", "cafe"])
    monkeypatch.setattr(store_mod.secrets, "token_hex", lambda n: next(calls))
    second = s.create(
        agent="a", bottle="b", backend="namespace", manifest_path="m", manifest_digest="d"
    )
    assert second.slug != first.slug


def test_home_dir_override(tmp_path: Path) -> None:
    assert home_dir({"BOT_BOTTLE_HOME": str(tmp_path)}) == tmp_path
    assert home_dir({}).name == "bot-bottle"


def test_metadata_holds_no_unknown_fields(tmp_path: Path) -> None:
    s = make(tmp_path)
    meta = s.create(agent="a", bottle="b", backend="docker", manifest_path="m", manifest_digest="d")
    raw = json.loads((s.dir(meta.slug) / "metadata.json").read_text())
    raw["future_field"] = 1  # written by a newer bot-bottle: still loads
    (s.dir(meta.slug) / "metadata.json").write_text(json.dumps(raw))
    assert s.load(meta.slug).backend == "docker"
