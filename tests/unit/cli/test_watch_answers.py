"""`watch`'s keys answer through the same functions as `deny` and `grant`, on real
state files (no terminal): a reason typed after `d` reaches the agent's record and the
audit log; a grant for a bottle that is not running changes nothing and says why."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot_bottle.cli.watch_cmd import BACKSPACE, ENTER, ESC, Watch
from bot_bottle.policy.supervise import Ask
from bot_bottle.sidecars.egress.audit import read_audit, verify_chain
from bot_bottle.state.requests import RequestDir
from bot_bottle.state.store import StateStore


def _setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[StateStore, RequestDir, str]:
    monkeypatch.setenv("BOT_BOTTLE_HOME", str(tmp_path))
    store = StateStore()
    meta = store.create(agent="a", bottle="b", backend="namespace", manifest_path="/m.yaml",
                        manifest_digest="d")  # fmt: skip
    asks = RequestDir(store.dir(meta.slug) / "sidecars" / "egress" / "requests", "b")
    return store, asks, meta.slug


def test_deny_with_a_typed_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, asks, slug = _setup(tmp_path, monkeypatch)
    asks.create(Ask("route", reason="r", host="a.test"), now=1.0)
    second = asks.create(Ask("route", reason="r", host="b.test"), now=2.0)
    w = Watch(store)
    for k in ["2", "d", "n", "o", "x", BACKSPACE, ENTER]:
        assert w.key(k)
    rec = asks.get(second.id)
    assert rec is not None and rec.status == "denied" and rec.answer == "no", rec
    assert w.message == f"denied {second.id} ({slug})"
    assert [r.id for _, r in w.snap.pending] != [second.id]
    audit = StateStore.audit_log(store.dir(slug))
    (answer,) = [r for r in read_audit(audit) if r.get("kind") == "answer"]
    assert answer["request"] == second.id and answer["reason"] == "no"
    assert verify_chain(audit) == (True, 0)


def test_grant_refused_for_a_stopped_bottle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, asks, _slug = _setup(tmp_path, monkeypatch)
    rec = asks.create(Ask("route", reason="r", host="a.test"))
    w = Watch(store)
    assert w.key("g")
    assert "not running" in w.message
    assert w.key("d") and w.key(ESC) and w.message == "cancelled"
    assert asks.get(rec.id).status == "pending"  # type: ignore[union-attr]
    assert not w.key("q")


def test_a_grant_for_a_degraded_bottle_says_when_it_goes_live(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import subprocess

    from click.testing import CliRunner

    from bot_bottle.cli.supervise_cmds import grant
    from bot_bottle.policy.egress_policy import EgressPolicy

    store, asks, slug = _setup(tmp_path, monkeypatch)
    dead = subprocess.Popen(["true"])
    dead.wait()  # a sidecar pid that no longer runs: the bottle is degraded
    store.update(slug, status="running", pids={"launcher": os.getpid(), "egress": dead.pid})
    routes = store.dir(slug) / "sidecars" / "egress" / "routes.json"
    routes.parent.mkdir(parents=True, exist_ok=True)
    routes.write_text(EgressPolicy(bottle="b").to_json())
    rec = asks.create(Ask("route", reason="r", host="a.test"))
    out = CliRunner().invoke(grant, [rec.id])
    assert out.exit_code == 0, out.output
    assert f"{slug} is degraded" in out.output and f"bot-bottle resume {slug}" in out.output
    assert "a.test" in routes.read_text()


def test_a_second_g_does_not_grant_the_request_the_selection_fell_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent keeps a request at the top of the list; the operator selects another
    and presses `g` twice (a bounce, or a redraw that seemed slow). Once the selected
    request is answered the selection used to fall to the first one, and the second
    `g` granted the agent's request, unseen. Now nothing is selected until the operator
    picks again."""
    import os
    import subprocess

    from bot_bottle.policy.egress_policy import EgressPolicy

    store, asks, slug = _setup(tmp_path, monkeypatch)
    dead = subprocess.Popen(["true"])
    dead.wait()
    store.update(slug, status="running", pids={"launcher": os.getpid(), "egress": dead.pid})
    routes = store.dir(slug) / "sidecars" / "egress" / "routes.json"
    routes.parent.mkdir(parents=True, exist_ok=True)
    routes.write_text(EgressPolicy(bottle="b").to_json())
    planted = asks.create(Ask("route", reason="r", host="exfil.test"), now=1.0)
    wanted = asks.create(Ask("route", reason="r", host="docs.test"), now=2.0)
    w = Watch(store)
    for k in ["2", "g", "g"]:
        assert w.key(k)
    assert asks.get(wanted.id).status == "granted"  # type: ignore[union-attr]
    assert asks.get(planted.id).status == "pending"  # type: ignore[union-attr]
    assert "exfil.test" not in routes.read_text()
    assert "select" in w.message, w.message
    assert w.key("1") and w.key("g")  # chosen on purpose, it is granted
    assert asks.get(planted.id).status == "granted"  # type: ignore[union-attr]
