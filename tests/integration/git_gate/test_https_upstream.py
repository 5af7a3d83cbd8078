"""An https upstream that demands a token: the gate fetches and pushes with the token
from its own environment (the manifest's `token_ref`, in `GIT_GATE_TOKEN_n`), and the
agent's clone, env and config never hold it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from git_gate_harness import (
    EXPECTED_AUTH,
    HTTPS_TOKEN,
    HttpsUpstream,
    git,
    read_ready,
)

from bot_bottle.sidecars.git_gate.config import gate_remote_url

pytestmark = pytest.mark.integration


def test_gate_uses_the_token_the_agent_never_holds(
    tmp_path: Path, https_upstream: HttpsUpstream
) -> None:
    up = https_upstream
    d = tmp_path / "gate"
    (d / "home").mkdir(parents=True)
    remote = {"name": "origin", "url": up.url, "token_slot": "GIT_GATE_TOKEN_0"}
    (d / "gate.json").write_text(json.dumps({"remotes": [remote]}))
    env = {"PATH": os.environ["PATH"], "HOME": str(d / "home"), "GIT_SSL_CAINFO": str(up.ca_path),
           "GIT_GATE_TOKEN_0": HTTPS_TOKEN}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot_bottle", "git-gate", "serve", "--config", str(d / "gate.json"),
         "--listen", "127.0.0.1:0", "--audit-log", str(d / "audit.jsonl"),
         "--state", str(d / "state")],
        env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        port = int(read_ready(proc).rsplit(":", 1)[1])
        home = tmp_path / "agent-home"
        home.mkdir()
        agent_env = {"PATH": os.environ["PATH"], "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1",
                     "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@b",
                     "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@b"}  # fmt: skip
        work = tmp_path / "work"
        git("clone", "-q", gate_remote_url("origin", port), str(work), env=agent_env)
        (work / "f.txt").write_text("from the agent\n")
        git("add", "f.txt", cwd=work, env=agent_env)
        git("commit", "-qm", "agent change", cwd=work, env=agent_env)
        git("push", "-q", "origin", "HEAD:refs/heads/agent/https", cwd=work, env=agent_env)
    finally:
        proc.terminate()
        proc.wait(10)
    pushed = git("--git-dir", str(up.bare), "log", "-1", "--format=%s", "refs/heads/agent/https")
    assert pushed == "agent change"
    assert EXPECTED_AUTH in up.auth_seen  # the token reached upstream, from the gate
    held = [p for p in [*home.rglob("*"), *work.rglob("*")] if p.is_file()]
    assert not any(HTTPS_TOKEN.encode() in p.read_bytes() for p in held)
    assert HTTPS_TOKEN not in json.dumps(agent_env)
    assert HTTPS_TOKEN not in (d / "audit.jsonl").read_text()


def test_wrong_token_is_refused_upstream(tmp_path: Path, https_upstream: HttpsUpstream) -> None:
    """The fake upstream really checks the token (so the test above can fail)."""
    r = subprocess.run(
        ["git", "-c", f"http.sslCAInfo={https_upstream.ca_path}", "ls-remote", https_upstream.url],
        capture_output=True, text=True, env={"PATH": os.environ["PATH"], "GIT_TERMINAL_PROMPT": "0",
                                             "HOME": str(tmp_path)},
    )  # fmt: skip
    assert r.returncode != 0 and "" in https_upstream.auth_seen
