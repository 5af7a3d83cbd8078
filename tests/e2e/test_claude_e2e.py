"""The real Claude Code CLI in a namespace bottle answers through egress from a fake
Anthropic API; the host token reaches only the API, never the bottle or a file."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from e2e_support import (
    agent_cli,
    base_env,
    bb,
    bottles,
    grep_tree,
    hand_over,
    trust,
    wrapped_agents,
)
from fakes.provider_api import CLAUDE_REPLY, FakeProviderAPI

pytestmark = pytest.mark.e2e

TOKEN = "sk-ant-oat01-FAKEHOSTTOKEN-e2e-7c1d9f"


def test_claude_p_through_egress(
    tmp_path: Path, bottle_backend: str, fake_api: FakeProviderAPI
) -> None:
    started = time.time()
    real = agent_cli("claude")
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "README").write_text("workspace file\n")
    (tmp_path / "bot-bottle.yaml").write_text(f"""
bottles:
  c:
    agent_provider: {{template: claude, auth_token: FAKE_CLAUDE_TOKEN_VAR}}
    egress: {fake_api.egress_yaml("api.anthropic.com")}
    workspace: {{mode: mount, path: ws}}
    backend: {bottle_backend}
agents:
  claude: {{bottle: c}}
""")
    env = base_env(tmp_path)
    env["FAKE_CLAUDE_TOKEN_VAR"] = TOKEN
    env["BOT_BOTTLE_AGENTS"] = str(wrapped_agents(tmp_path, "claude", real))
    hand_over(tmp_path / "ws")
    trust(env, tmp_path)
    r = bb(["run", "claude", "-y", "--keep", "--", "-p", "hi"], env, tmp_path)
    assert r.returncode == 0, r.stderr
    assert CLAUDE_REPLY in r.stdout

    messages = [q for q in fake_api.requests if q.path.startswith("/v1/messages")]
    assert messages, [q.path for q in fake_api.requests]
    assert {q.headers["authorization"] for q in fake_api.requests} == {f"Bearer {TOKEN}"}

    dump = (tmp_path / "ws" / ".bottle-dump").read_text()
    assert "CLAUDE_CODE_OAUTH_TOKEN=egress-placeholder" in dump
    assert "HTTPS_PROXY=http://127.0.0.1:" in dump
    assert TOKEN not in dump

    listed = bottles(env, tmp_path)
    assert TOKEN not in r.stdout + r.stderr + json.dumps(listed)
    info_hits = grep_tree(tmp_path, TOKEN)
    assert info_hits == [], info_hits
    assert _tmp_hits(TOKEN, started) == []
    assert bb(["rm", *(b["slug"] for b in listed)], env, tmp_path).returncode == 0


def _tmp_hits(needle: str, since: float) -> list[str]:
    """Any file written under /tmp since the test started that holds `needle`."""
    hits = []
    for dirpath, dirs, files in os.walk("/tmp"):
        dirs[:] = [d for d in dirs if d != "node_modules"]
        for f in files:
            p = os.path.join(dirpath, f)
            try:
                st = os.lstat(p)
                if st.st_mtime < since or st.st_size > 50_000_000 or not os.path.isfile(p):
                    continue
                with open(p, "rb") as fh:
                    if needle.encode() in fh.read():
                        hits.append(p)
            except OSError:
                continue
    return hits
