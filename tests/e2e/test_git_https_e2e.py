"""A bottle pushes to an https remote whose token (`git.remotes[].token_ref`) only the git
gate holds: the push arrives with the token, and nothing the agent can see holds it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from e2e_support import base_env, bb, grep_tree, hand_over, trust

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration" / "git_gate"))
from git_gate_harness import EXPECTED_AUTH, HTTPS_TOKEN, HttpsUpstream, git
from git_gate_harness import https_upstream as _https_upstream_fixture

pytestmark = pytest.mark.e2e
https_upstream = _https_upstream_fixture

AGENT = """
set -e
exec > /workspace/agent.log 2>&1
git clone -q "$UPSTREAM" repo
cd repo
echo "over https" > https.txt
git add https.txt
git commit -qm "agent change over https"
git push origin HEAD:refs/heads/agent/https
echo PUSHED
{ env; find "$HOME" -type f -exec cat {} +; cat .git/config; } > /workspace/dump.txt 2>&1
"""


def test_push_to_https_remote_with_gate_held_token(
    tmp_path: Path, bottle_backend: str, https_upstream: HttpsUpstream
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "agent.sh").write_text(AGENT)
    (tmp_path / "bot-bottle.yaml").write_text(f"""
bottles:
  g:
    agent_provider: {{template: command, command: [sh, /workspace/agent.sh]}}
    env: {{UPSTREAM: "{https_upstream.url}"}}
    git:
      remotes:
        - {{name: origin, url: "{https_upstream.url}", token_ref: GIT_HTTPS_TOKEN}}
    workspace: {{mode: mount, path: ws}}
    backend: {bottle_backend}
agents:
  pusher: {{bottle: g}}
""")
    env = base_env(tmp_path)
    env["GIT_HTTPS_TOKEN"] = HTTPS_TOKEN
    env["GIT_SSL_CAINFO"] = str(https_upstream.ca_path)  # the gate trusts the private CA
    hand_over(ws)
    trust(env, tmp_path)
    r = bb(["run", "pusher", "-y"], env, tmp_path, timeout=180)
    log = (ws / "agent.log").read_text() if (ws / "agent.log").exists() else ""
    assert r.returncode == 0, r.stderr + log
    assert "PUSHED" in log
    subject = git("--git-dir", str(https_upstream.bare), "log", "-1", "--format=%s", "agent/https")
    assert subject == "agent change over https"
    assert EXPECTED_AUTH in https_upstream.auth_seen
    assert HTTPS_TOKEN not in (ws / "dump.txt").read_text()
    assert HTTPS_TOKEN not in r.stdout + r.stderr
    assert grep_tree(tmp_path, HTTPS_TOKEN) == []
