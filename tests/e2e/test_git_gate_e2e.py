"""Inside a real namespace bottle the agent clones, commits and pushes through the git
gate to an upstream behind a real sshd whose key only the gate holds; a push carrying
a secret is refused with file and line; nothing inside the bottle holds the key."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from e2e_support import base_env, bb, bottles, grep_tree, hand_over, trust

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration" / "git_gate"))
from git_gate_harness import Upstream, git
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


def test_agent_pushes_through_gate(tmp_path: Path, bottle_backend: str, upstream: Upstream) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "agent.sh").write_text(AGENT)
    (tmp_path / "bot-bottle.yaml").write_text(f"""
bottles:
  g:
    agent_provider: {{template: command, command: [sh, /workspace/agent.sh]}}
    env: {{UPSTREAM: "{upstream.url}", FAKE_KEY: {FAKE_AWS}, BACKEND: {bottle_backend}}}
    git:
      user: {{name: Bottle Bot, email: bottle@example.com}}
      remotes:
        - name: origin
          url: "{upstream.url}"
          protected_refs: [refs/heads/main]
          allowed_refs: ["refs/heads/agent/*"]
    workspace: {{mode: mount, path: ws}}
    backend: {bottle_backend}
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
    head = upstream.rev(f"refs/heads/agent/e2e-{bottle_backend}")
    assert head, log
    author = git("--git-dir", str(upstream.bare), "log", "-1", "--format=%an <%ae>", head)
    assert author == "Bottle Bot <bottle@example.com>"

    assert "PUSH2=rejected" in log, log
    assert "leak.cfg:2" in log and "aws-access-key" in log, log
    assert FAKE_AWS not in log.split("PUSH2")[1].replace(f"FAKE_KEY={FAKE_AWS}", "")
    assert upstream.rev(f"refs/heads/agent/leak-{bottle_backend}") == ""
    assert "PUSH3=rejected" in log and "decoy.ini:2: canary" in log, log

    dump = (ws / "dump.txt").read_text()
    key_text = upstream.key.read_text().strip().splitlines()[1]
    assert key_text not in dump
    assert "BOT_BOTTLE_GIT_SSH_KEY" not in dump and str(upstream.key) not in dump
    assert "PRIVATE KEY" not in dump
    assert grep_tree(tmp_path / "bb-home", key_text) == []

    slugs = [b["slug"] for b in bottles(env, tmp_path)]
    logs = bb(["logs", slugs[0], "--json"], env, tmp_path)
    pushes = [json.loads(x) for x in logs.stdout.splitlines() if '"git-push"' in x]
    assert [p["verdict"] for p in pushes] == ["accepted", "rejected", "rejected"], logs.stdout
    assert FAKE_AWS not in logs.stdout
    assert bb(["logs", slugs[0], "--verify"], env, tmp_path).returncode == 0
    assert bb(["rm", *slugs], env, tmp_path).returncode == 0
