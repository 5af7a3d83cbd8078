"""The real Claude Code CLI (`claude -p`) in a microVM bottle, through `bot-bottle run`:
the agent-claude image's CLI on the guest's root, under the guest's own kernel, answers
from a fake Anthropic API on loopback through the host channel and the egress, which
injects the host token. The token reaches only the API: not the guest (its environment
holds the placeholder), not a file, not the output. Slow under TCG: the test prints its
time."""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path

import pytest
from e2e_support import base_env, bb, bottles, grep_tree, hand_over, trust
from fakes.provider_api import CLAUDE_REPLY, FakeProviderAPI
from test_claude_e2e import _tmp_hits

pytestmark = pytest.mark.e2e

TOKEN = "sk-ant-oat01-FAKEHOSTTOKEN-microvm-e2e-4b2a"


def test_claude_p_in_a_microvm(tmp_path: Path, microvm_ready: None,
                               fake_api: FakeProviderAPI) -> None:  # fmt: skip
    started = time.time()
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "README").write_text("workspace file\n")
    (tmp_path / "bot-bottle.yaml").write_text(f"""
bottles:
  c:
    agent_provider: {{template: claude, auth_token: FAKE_CLAUDE_TOKEN_VAR}}
    egress: {fake_api.egress_yaml("api.anthropic.com")}
    workspace: {{mode: mount, path: ws}}
    backend: microvm
agents:
  claude: {{bottle: c}}
""")
    env = base_env(tmp_path)
    env["FAKE_CLAUDE_TOKEN_VAR"] = TOKEN
    hand_over(tmp_path / "ws")
    trust(env, tmp_path)
    t0 = time.monotonic()
    r = bb(["run", "claude", "-y", "--keep", "--", "-p", "hi"], env, tmp_path, timeout=600)
    took = time.monotonic() - t0
    print(f"\nclaude -p in a microVM (TCG here): run to exit {took:.1f} s")
    assert r.returncode == 0, r.stderr[-3000:]
    assert CLAUDE_REPLY in r.stdout

    messages = [q for q in fake_api.requests if q.path.startswith("/v1/messages")]
    assert messages, [q.path for q in fake_api.requests]
    assert {q.headers["authorization"] for q in fake_api.requests} == {f"Bearer {TOKEN}"}

    # What the guest was given (its environment and command): kept with the bottle.
    (listed,) = bottles(env, tmp_path)
    assert listed["backend"] == "microvm"
    state = Path(env["BOT_BOTTLE_HOME"]) / "bottles" / listed["slug"]
    with tarfile.open(state / "vm" / "provision.tar") as tar:
        member = tar.extractfile("run.sh")
        assert member is not None
        run_sh = io.TextIOWrapper(member).read()
    assert "export CLAUDE_CODE_OAUTH_TOKEN=egress-placeholder" in run_sh
    assert "export HTTPS_PROXY=http://127.0.0.1:3128" in run_sh
    assert TOKEN not in run_sh

    assert TOKEN not in r.stdout + r.stderr + json.dumps(listed)
    assert grep_tree(tmp_path, TOKEN) == []
    assert _tmp_hits(TOKEN, started) == []
    assert bb(["rm", listed["slug"]], env, tmp_path).returncode == 0
