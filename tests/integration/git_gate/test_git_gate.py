"""The git gate against a real ssh upstream: what passes, what is refused, and why."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from git_gate_harness import Agent, GateProc, Upstream, git, host_clone

pytestmark = pytest.mark.integration

# Built at runtime so this file holds no literal key-shaped string.
FAKE_KEY = "AKIA" + "Q7R2ZK4WXM9PLT3B"


def audit_records(gate: GateProc) -> list[dict[str, object]]:
    if not gate.audit.exists():
        return []
    return [json.loads(line) for line in gate.audit.read_text().splitlines()]


def push_records(gate: GateProc) -> list[dict[str, object]]:
    return [r for r in audit_records(gate) if r.get("kind") == "git-push"]


def test_clean_push_arrives_upstream(agent: Agent, upstream: Upstream, gate: GateProc) -> None:
    before = len(push_records(gate))
    head = agent.commit("src/app.py", "print('hi')\n", "clean change")
    p = agent.try_git("push", "origin", "main")
    assert p.returncode == 0, p.stderr
    assert "remote: git-gate: checked 1 new commit(s)" in p.stderr
    assert "remote: git-gate: upstream:" in p.stderr  # upstream's own answer is shown
    assert upstream.rev("refs/heads/main") == head
    recs = push_records(gate)[before:]
    assert len(recs) == 1
    assert recs[0]["verdict"] == "accepted" and recs[0]["commits"] == [head]


def test_secret_is_rejected_with_file_and_line(
    agent: Agent, upstream: Upstream, gate: GateProc
) -> None:
    before_rev = upstream.rev("refs/heads/main")
    before = len(push_records(gate))
    bad = agent.commit("config/aws.env", f"region=eu-west-1\nkey={FAKE_KEY}\n", "add config")
    p = agent.try_git("push", "origin", "main")
    assert p.returncode != 0
    assert "REJECTED" in p.stderr
    assert f"{bad[:12]} config/aws.env:2: aws-access-key" in p.stderr
    assert FAKE_KEY not in p.stderr
    assert upstream.rev("refs/heads/main") == before_rev
    (rec,) = push_records(gate)[before:]
    assert rec["verdict"] == "rejected"
    assert rec["findings"] == [
        {
            "commit": bad,
            "path": "config/aws.env",
            "line": 2,
            "detector": "aws-access-key",
            "fingerprint": rec["findings"][0]["fingerprint"],  # type: ignore[index]
            "object": rec["findings"][0]["object"],  # type: ignore[index]
            "field": "content",
            "ref": "refs/heads/main",
        }
    ]
    assert FAKE_KEY not in gate.audit.read_text()


def test_secret_added_then_removed_in_one_push_is_rejected(
    agent: Agent, upstream: Upstream
) -> None:
    before_rev = upstream.rev("refs/heads/main")
    added = agent.commit("notes.txt", f"one\ntwo\n{FAKE_KEY}\n", "oops")
    agent.commit("notes.txt", "one\ntwo\n", "remove the key again")
    p = agent.try_git("push", "origin", "main")
    assert p.returncode != 0
    assert f"{added[:12]} notes.txt:3: aws-access-key" in p.stderr
    assert upstream.rev("refs/heads/main") == before_rev


def test_secret_in_commit_message_is_rejected(agent: Agent, upstream: Upstream) -> None:
    agent.commit("m.txt", "x\n", f"debug\n\nusing {FAKE_KEY}")
    p = agent.try_git("push", "origin", "main")
    assert p.returncode != 0 and "commit message:3: aws-access-key" in p.stderr


def test_force_push_to_protected_ref_is_rejected(agent: Agent, upstream: Upstream) -> None:
    agent.commit("a.txt", "a\n", "base")
    assert agent.try_git("push", "origin", "main").returncode == 0
    before_rev = upstream.rev("refs/heads/main")
    agent.git("reset", "-q", "--hard", "HEAD~1")
    agent.commit("b.txt", "b\n", "rewritten")
    p = agent.try_git("push", "--force", "origin", "main")
    assert p.returncode != 0
    assert "git-protected-force: refs/heads/main" in p.stderr
    assert upstream.rev("refs/heads/main") == before_rev


def test_delete_of_protected_ref_is_rejected(agent: Agent, upstream: Upstream) -> None:
    p = agent.try_git("push", "origin", ":main")
    assert p.returncode != 0
    assert "git-protected-delete: refs/heads/main" in p.stderr
    assert upstream.rev("refs/heads/main")


def test_ref_outside_allowed_refs_is_rejected(agent: Agent, upstream: Upstream) -> None:
    agent.commit("c.txt", "c\n")
    p = agent.try_git("push", "origin", "HEAD:refs/heads/release")
    assert p.returncode != 0
    assert "git-ref-not-allowed: refs/heads/release" in p.stderr
    assert "hint: add 'refs/heads/release'" in p.stderr
    assert not upstream.rev("refs/heads/release")


def test_unprotected_branch_can_be_force_pushed_and_deleted(
    agent: Agent, upstream: Upstream
) -> None:
    agent.git("checkout", "-qb", "agent/wip")
    agent.commit("w.txt", "1\n")
    assert agent.try_git("push", "origin", "agent/wip").returncode == 0
    agent.git("commit", "-q", "--amend", "-m", "amended")
    p = agent.try_git("push", "--force", "origin", "agent/wip")
    assert p.returncode == 0, p.stderr
    assert upstream.rev("refs/heads/agent/wip") == agent.git("rev-parse", "HEAD")
    assert agent.try_git("push", "origin", ":agent/wip").returncode == 0
    assert not upstream.rev("refs/heads/agent/wip")


def test_fetch_sees_upstream_changes_made_after_the_clone(
    agent: Agent, upstream: Upstream, tmp_path: Path
) -> None:
    op = host_clone(upstream, tmp_path / "operator")
    (op / "later.txt").write_text("made upstream after the clone\n")
    ident = ("-c", "user.name=op", "-c", "user.email=op@x")
    git(*ident, "add", ".", cwd=op)
    git(*ident, "commit", "-qm", "upstream change", cwd=op)
    git("push", "-q", "origin", "main", cwd=op)
    agent.git("pull", "-q", "--ff-only", "origin", "main")
    assert (agent.repo / "later.txt").exists()
    assert agent.git("rev-parse", "HEAD") == upstream.rev("refs/heads/main")


def test_agent_holds_no_key(agent: Agent, upstream: Upstream, gate: GateProc) -> None:
    key = upstream.key.read_text()
    key_body = key.splitlines()[1]
    assert not any(str(upstream.key) in v or key_body in v for v in agent.env.values())
    assert not any("SSH" in k for k in agent.env)
    config = agent.git("config", "--list", "--show-origin")
    assert str(upstream.key) not in config and "ssh" not in config.lower()
    assert agent.git("remote", "get-url", "origin") == gate.url()
    for root in (agent.home, agent.repo):
        for dirpath, _, files in os.walk(root):
            for name in files:
                data = (Path(dirpath) / name).read_bytes()
                assert key_body.encode() not in data and str(upstream.key).encode() not in data


def test_unknown_remote_and_dumb_http_are_refused(gate: GateProc) -> None:
    import urllib.error
    import urllib.request

    for path, code in (("/other.git/info/refs?service=git-upload-pack", 404),
                       ("/origin.git/info/refs", 403), ("/origin.git/HEAD", 404),
                       ("/origin.git/objects/info/packs", 404)):  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"http://127.0.0.1:{gate.port}{path}", timeout=10)
        assert e.value.code == code, path


def test_audit_chain_is_intact(agent: Agent, gate: GateProc) -> None:
    from bot_bottle.sidecars.egress.audit import verify_chain

    # Push once (one accepted, one rejected) so the chain holds records even when this
    # test runs alone.
    agent.git("checkout", "-qb", "agent/audit")
    agent.commit("audit.txt", "clean\n")
    assert agent.try_git("push", "origin", "agent/audit").returncode == 0
    agent.commit("audit.txt", f"key={FAKE_KEY}\n")
    assert agent.try_git("push", "origin", "agent/audit").returncode != 0
    assert [r["verdict"] for r in push_records(gate)[-2:]] == ["accepted", "rejected"]
    assert verify_chain(gate.audit) == (True, 0)
