"""Issue 12 item 7: Claude Code with an Anthropic API key (`agent_provider.api_key`).
The real CLI, in `-p` and in its TUI (tmux), answers through egress from the fake
API, which receives the real key in `x-api-key`; the bottle holds only a placeholder,
and nothing the run wrote holds the key."""

from __future__ import annotations

import json
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
    real_agents_dir,
    trust,
    wrapped_agents,
)
from fakes.provider_api import CLAUDE_REPLY, FakeProviderAPI
from test_claude_e2e import _tmp_hits
from tmux_session import EXIT_MARK, TmuxSession

pytestmark = pytest.mark.e2e

KEY = "sk-ant-api03-FAKEHOSTAPIKEY-e2e-93f0c1d2e3f4a5b6"


def _setup(tmp: Path, api: FakeProviderAPI, backend: str) -> dict[str, str]:
    (tmp / "ws").mkdir()
    (tmp / "ws" / "README").write_text("workspace file\n")
    (tmp / "bot-bottle.yaml").write_text(f"""
bottles:
  c:
    agent_provider: {{template: claude, api_key: MY_ANTHROPIC_KEY}}
    egress: {api.egress_yaml("api.anthropic.com")}
    workspace: {{mode: mount, path: ws}}
    backend: {backend}
agents:
  claude: {{bottle: c}}
""")
    env = base_env(tmp)
    env["MY_ANTHROPIC_KEY"] = KEY
    hand_over(tmp / "ws")
    trust(env, tmp)
    return env


def _keys_sent(api: FakeProviderAPI) -> set[str]:
    return {q.headers.get("x-api-key", "") for q in api.requests if q.path.startswith("/v1/")}


def _nothing_holds_the_key(tmp: Path, env: dict[str, str], out: str, since: float) -> None:
    assert KEY not in out
    assert KEY not in json.dumps(bottles(env, tmp))
    assert grep_tree(tmp, KEY) == []
    assert _tmp_hits(KEY, since) == []


def test_claude_p_with_api_key(
    tmp_path: Path, bottle_backend: str, fake_api: FakeProviderAPI
) -> None:
    started = time.time()
    real = agent_cli("claude")
    env = _setup(tmp_path, fake_api, bottle_backend)
    env["BOT_BOTTLE_AGENTS"] = str(wrapped_agents(tmp_path, "claude", real))
    r = bb(["run", "claude", "-y", "--keep", "--", "-p", "hi"], env, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert CLAUDE_REPLY in r.stdout
    assert _keys_sent(fake_api) == {KEY}
    assert all("authorization" not in q.headers for q in fake_api.requests)
    dump = (tmp_path / "ws" / ".bottle-dump").read_text()
    assert "ANTHROPIC_API_KEY=sk-ant-api03-egress-placeholder" in dump
    _nothing_holds_the_key(tmp_path, env, r.stdout + r.stderr, started)
    assert bb(["rm", *(b["slug"] for b in bottles(env, tmp_path))], env, tmp_path).returncode == 0


def test_claude_tui_with_api_key(
    tmp_path: Path, bottle_backend: str, fake_api: FakeProviderAPI
) -> None:
    started = time.time()
    agent_cli("claude")
    env = _setup(tmp_path, fake_api, bottle_backend)
    env["BOT_BOTTLE_AGENTS"] = str(real_agents_dir())
    env["TERM"] = "xterm-256color"
    term = TmuxSession(tmp_path, "key")
    try:
        term.start_bb(["run", "claude", "-y", "--keep"], env, tmp_path)
        seen = term.wait("for shortcuts", "custom API key", "Not logged in", EXIT_MARK, timeout=120)
        assert seen == "for shortcuts", term.log[-1]
        term.type("hello with a key")
        term.wait(CLAUDE_REPLY)
        term.type("/exit")
        term.wait(EXIT_MARK, timeout=60)
        screens = "\n".join(term.log)
    finally:
        term.kill()
    assert _keys_sent(fake_api) == {KEY}
    _nothing_holds_the_key(tmp_path, env, screens, started)
    assert bb(["rm", *(b["slug"] for b in bottles(env, tmp_path))], env, tmp_path).returncode == 0
