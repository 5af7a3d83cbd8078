"""Inside a real bottle, on every backend, the agent clones, commits and pushes through
the git gate to an upstream behind a real sshd whose key only the gate holds; a push
carrying a secret is refused with file and line; nothing inside the bottle holds the key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from e2e_support import assert_not_written, base_env, bb, bottles, hand_over, trust

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration" / "git_gate"))
from git_gate_harness import Upstream, git, seed_bare
from git_gate_harness import upstream as _upstream_fixture

pytestmark = pytest.mark.e2e
upstream = _upstream_fixture
FAKE_AWS = "AKIA" + "Q7ZT4KXW2M3N5P6R"

AGENT = """
set -e
exec > /workspace/agent.log 2>&1
git clone -q "$UPSTREAM" repo
cd repo
echo "from the bottle" > bottle.txt
git add bottle.txt
git commit -qm "agent change"
git push origin "HEAD:refs/heads/agent/e2e-$BACKEND"
echo "PUSH1=ok"
printf 'region = us-east-1\\naws_access_key_id = %s\\n' "$FAKE_KEY" > leak.cfg
git add leak.cfg
git commit -qm "oops"
if git push origin "HEAD:refs/heads/agent/leak-$BACKEND"; then echo "PUSH2=accepted"; else echo "PUSH2=rejected"; fi
git reset -q --hard HEAD~1
cp ~/.aws/credentials decoy.ini   # the canary bot-bottle planted
git add decoy.ini
git commit -qm "found some keys"
if git push origin "HEAD:refs/heads/agent/decoy-$BACKEND"; then echo "PUSH3=accepted"; else echo "PUSH3=rejected"; fi
{ echo "== env"; env; echo "== home"; find "$HOME" -type f -exec cat {} +; echo "== fs"; \
  ls -la / /home /root 2>&1 || true; } > /workspace/dump.txt 2>&1
"""


def test_agent_pushes_through_gate(tmp_path: Path, any_backend: str, upstream: Upstream) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "agent.sh").write_text(AGENT)
    (tmp_path / "bot-bottle.yaml").write_text(f"""
bottles:
  g:
    agent_provider: {{template: command, command: [sh, /workspace/agent.sh]}}
    env: {{UPSTREAM: "{upstream.url}", FAKE_KEY: {FAKE_AWS}, BACKEND: {any_backend}}}
    git:
      user: {{name: Bottle Bot, email: bottle@example.com}}
      remotes:
        - name: origin
          url: "{upstream.url}"
          protected_refs: [refs/heads/main]
          allowed_refs: ["refs/heads/agent/*"]
    workspace: {{mode: mount, path: ws}}
    backend: {any_backend}
agents:
  pusher: {{bottle: g}}
""")
    env = base_env(tmp_path)
    env["BOT_BOTTLE_GIT_SSH_KEY"] = str(upstream.key)
    env["BOT_BOTTLE_GIT_SSH_KNOWN_HOSTS"] = str(upstream.known_hosts)
    hand_over(ws)
    trust(env, tmp_path)
    r = bb(["run", "pusher", "-y", "--keep"], env, tmp_path, timeout=180)
    log = (ws / "agent.log").read_text() if (ws / "agent.log").exists() else ""
    assert r.returncode == 0, r.stderr + log

    assert "PUSH1=ok" in log, log
    head = upstream.rev(f"refs/heads/agent/e2e-{any_backend}")
    assert head, log
    author = git("--git-dir", str(upstream.bare), "log", "-1", "--format=%an <%ae>", head)
    assert author == "Bottle Bot <bottle@example.com>"

    assert "PUSH2=rejected" in log, log
    assert "leak.cfg:2" in log and "aws-access-key" in log, log
    assert FAKE_AWS not in log.split("PUSH2")[1].replace(f"FAKE_KEY={FAKE_AWS}", "")
    assert upstream.rev(f"refs/heads/agent/leak-{any_backend}") == ""
    assert "PUSH3=rejected" in log and "decoy.ini:2: canary" in log, log

    dump = (ws / "dump.txt").read_text()
    key_text = upstream.key.read_text().strip().splitlines()[1]
    assert key_text not in dump
    assert "BOT_BOTTLE_GIT_SSH_KEY" not in dump and str(upstream.key) not in dump
    assert "PRIVATE KEY" not in dump
    assert_not_written(tmp_path / "bb-home", key_text, any_backend)

    slugs = [b["slug"] for b in bottles(env, tmp_path)]
    logs = bb(["logs", slugs[0], "--json"], env, tmp_path)
    pushes = [json.loads(x) for x in logs.stdout.splitlines() if '"git-push"' in x]
    assert [p["verdict"] for p in pushes] == ["accepted", "rejected", "rejected"], logs.stdout
    assert FAKE_AWS not in logs.stdout
    assert bb(["logs", slugs[0], "--verify"], env, tmp_path).returncode == 0
    assert bb(["rm", *slugs], env, tmp_path).returncode == 0


SHAPES_AGENT = """
set -e
exec > /workspace/agent.log 2>&1
git clone -q "$UPSTREAM" repo
cd repo
echo "from the bottle" > ok.txt
git add ok.txt
git commit -qm "clean change"
if git push origin "HEAD:refs/heads/agent/ok-$BACKEND"; then echo "CLEAN=accepted"; else echo "CLEAN=rejected"; fi
base=$(git rev-parse HEAD)
try() { name=$1; shift; if git push origin "$@"; then echo "$name=accepted"; else echo "$name=rejected"; fi; }
blob=$(printf 'key=%s\\n' "$FAKE_KEY" | git hash-object -w --stdin)
try TAG_AT_BLOB "$blob:refs/tags/blob-$BACKEND"
git checkout -qb s1 "$base"; echo 1 > s1.txt; git add s1.txt; git commit -qm s1
git checkout -qb s2 "$base"; echo 2 > s2.txt; git add s2.txt; git commit -qm s2
git checkout -qb octo "$base"
git merge -q --no-ff --no-commit s1 s2
printf 'key=%s\\n' "$FAKE_KEY" > leak.txt
git add leak.txt
git commit -qm "octopus"
test "$(git rev-list --parents -n1 HEAD | wc -w)" = 4
try OCTOPUS "HEAD:refs/heads/agent/octo-$BACKEND"
git checkout -q "$base"
GIT_AUTHOR_NAME="$FAKE_KEY" git commit -q --allow-empty -m "who am i"
try AUTHOR "HEAD:refs/heads/agent/author-$BACKEND"
try REF_NAME "$base:refs/heads/agent/$FAKE_KEY"
"""


def test_agent_push_shapes_to_a_local_upstream(tmp_path: Path, any_backend: str) -> None:
    """From a real bottle, through the gate, to a `file://` upstream (a bare repository on
    the host): a clean push lands (the gate forwards outside git's quarantine), and a
    secret carried by a tag at a blob, an octopus merge, an author name or a ref name
    is refused and never reaches upstream."""
    bare = seed_bare(tmp_path / "upstream" / "repo.git")
    url = bare.as_uri()
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "agent.sh").write_text(SHAPES_AGENT)
    hand_over(ws)
    (tmp_path / "bot-bottle.yaml").write_text(f"""
bottles:
  g:
    agent_provider: {{template: command, command: [sh, /workspace/agent.sh]}}
    env: {{UPSTREAM: "{url}", FAKE_KEY: {FAKE_AWS}, BACKEND: {any_backend}}}
    git:
      user: {{name: Bottle Bot, email: bottle@example.com}}
      remotes:
        - name: origin
          url: "{url}"
          protected_refs: [refs/heads/main]
          allowed_refs: ["refs/heads/agent/**", "refs/tags/**"]
    workspace: {{mode: mount, path: ws}}
    backend: {any_backend}
agents:
  pusher: {{bottle: g}}
""")
    env = base_env(tmp_path)
    trust(env, tmp_path)
    r = bb(["run", "pusher", "-y", "--keep"], env, tmp_path, timeout=180)
    try:
        check_shapes(r, ws, bare, env, tmp_path, any_backend)
    finally:
        slugs = [b["slug"] for b in bottles(env, tmp_path)]
        if slugs:
            bb(["rm", *slugs], env, tmp_path)


def check_shapes(
    r: subprocess.CompletedProcess[str], ws: Path, bare: Path, env: dict[str, str],
    tmp_path: Path, any_backend: str,
) -> None:  # fmt: skip
    log = (ws / "agent.log").read_text() if (ws / "agent.log").exists() else ""
    assert r.returncode == 0, r.stderr + log

    def rev(ref: str) -> str:
        p = subprocess.run(["git", "--git-dir", str(bare), "rev-parse", "-q", "--verify", ref],
                           capture_output=True, text=True)  # fmt: skip
        return p.stdout.strip()

    assert "CLEAN=accepted" in log, log
    assert rev(f"refs/heads/agent/ok-{any_backend}"), log
    for shape in ("TAG_AT_BLOB", "OCTOPUS", "AUTHOR", "REF_NAME"):
        assert f"{shape}=rejected" in log, log
    assert "commit author: aws-access-key" in log and "leak.txt:1: aws-access-key" in log, log
    refs = subprocess.run(["git", "--git-dir", str(bare), "for-each-ref", "--format=%(refname)"],
                          capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    assert refs == ["refs/heads/agent/ok-" + any_backend, "refs/heads/main"], refs
    every = subprocess.run(["git", "--git-dir", str(bare), "cat-file", "--batch-all-objects",
                            "--batch"], capture_output=True, check=True).stdout  # fmt: skip
    assert FAKE_AWS.encode() not in every  # upstream holds no object with the key

    slugs = [b["slug"] for b in bottles(env, tmp_path)]
    logs = bb(["logs", slugs[0], "--json"], env, tmp_path)
    pushes = [json.loads(x) for x in logs.stdout.splitlines() if '"git-push"' in x]
    assert [p["verdict"] for p in pushes] == ["accepted"] + ["rejected"] * 4, logs.stdout
    assert FAKE_AWS not in logs.stdout
