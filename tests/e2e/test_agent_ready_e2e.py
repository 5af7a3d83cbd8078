"""Issue 12 item 6: the real Claude Code TUI, in a tmux terminal, starts ready to work
(no folder-trust dialog, no onboarding) on `run` and on `resume`, and `resume
--continue` carries the previous conversation to the (fake) API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from e2e_support import agent_cli, base_env, bb, bottles, hand_over, real_agents_dir, trust
from fakes.provider_api import CLAUDE_REPLY, FakeProviderAPI
from tmux_session import EXIT_MARK, TmuxSession

pytestmark = pytest.mark.e2e

TOKEN = "sk-ant-oat01-FAKEHOSTTOKEN-ready-e2e-51b2"
TRUST_DIALOG = "trust this folder"
PROMPT_READY = "for shortcuts"  # the input box's hint line: the TUI is ready for typing


def _manifest(tmp: Path, api: FakeProviderAPI, backend: str) -> dict[str, str]:
    (tmp / "ws").mkdir()
    (tmp / "ws" / "README").write_text("workspace file\n")
    (tmp / "bot-bottle.yaml").write_text(f"""
bottles:
  c:
    agent_provider: {{template: claude, auth_token: FAKE_CLAUDE_TOKEN_VAR}}
    egress: {api.egress_yaml("api.anthropic.com")}
    workspace: {{mode: mount, path: ws}}
    backend: {backend}
agents:
  claude: {{bottle: c}}
""")
    env = base_env(tmp)
    env["FAKE_CLAUDE_TOKEN_VAR"] = TOKEN
    env["BOT_BOTTLE_AGENTS"] = str(real_agents_dir())
    env["TERM"] = "xterm-256color"
    hand_over(tmp / "ws")
    trust(env, tmp)
    return env


def _converse(term: TmuxSession, words: str) -> None:
    """Wait for the ready input box (failing on a trust dialog), say `words`, wait for
    the fake API's reply, then leave with /exit and wait for bot-bottle to end."""
    seen = term.wait(PROMPT_READY, TRUST_DIALOG, EXIT_MARK, timeout=120)
    assert seen == PROMPT_READY, "\n".join(term.log[-1:])
    term.type(words)
    term.wait(CLAUDE_REPLY)
    term.type("/exit")
    term.wait(EXIT_MARK, timeout=60)


def _user_texts(api: FakeProviderAPI) -> list[list[str]]:
    """For each main-conversation request to the API: the user turns' texts it carried."""
    out = []
    for q in api.requests:
        if not q.path.startswith("/v1/messages") or "count_tokens" in q.path:
            continue
        body = json.loads(q.body or b"{}")
        texts = []
        for m in body.get("messages", []):
            content = m.get("content")
            parts = [content] if isinstance(content, str) else content or []
            for p in parts:
                text = p if isinstance(p, str) else p.get("text", "")
                if m.get("role") == "user" and text:
                    texts.append(text)
        out.append(texts)
    return out


def test_claude_tui_ready_on_run_and_resume_with_history(
    tmp_path: Path, bottle_backend: str, fake_api: FakeProviderAPI
) -> None:
    agent_cli("claude")
    env = _manifest(tmp_path, fake_api, bottle_backend)
    first = TmuxSession(tmp_path, "first")
    try:
        first.start_bb(["run", "claude", "-y", "--keep"], env, tmp_path)
        _converse(first, "remember the word zanzibar")
        assert not first.seen(TRUST_DIALOG)
    finally:
        first.kill()
    assert first.seen(EXIT_MARK + "0"), first.log[-1]
    slugs = [b["slug"] for b in bottles(env, tmp_path)]
    assert len(slugs) == 1
    # Claude's own "Resume this session with: claude --resume ..." names a command of
    # the bottle's HOME; bot-bottle says the host's equivalent after it.
    assert first.seen(f"bot-bottle resume {slugs[0]} --continue"), first.log[-1]

    before = len(fake_api.requests)
    second = TmuxSession(tmp_path, "second")
    try:
        second.start_bb(["resume", slugs[0], "-y", "--continue"], env, tmp_path)
        _converse(second, "what was the word")
        assert not second.seen(TRUST_DIALOG)
    finally:
        second.kill()
    assert second.seen(EXIT_MARK + "0"), second.log[-1]
    later = [t for t in _user_texts_since(fake_api, before) if any("what was the word" in x
                                                                   for x in t)]  # fmt: skip
    assert later, _user_texts(fake_api)
    # A turn's request carries the earlier turns (a title request may carry only the
    # new words, so look at all of them).
    assert any("zanzibar" in x for t in later for x in t), later
    assert bb(["rm", *slugs], env, tmp_path).returncode == 0


def _user_texts_since(api: FakeProviderAPI, n: int) -> list[list[str]]:
    saved, api.requests = api.requests, api.requests[n:]
    try:
        return _user_texts(api)
    finally:
        api.requests = saved


@pytest.mark.parametrize("name, says", [("claude", "(Claude Code)"), ("codex", "codex-cli")])
def test_agents_exec_runs_the_installed_cli(tmp_path: Path, name: str, says: str) -> None:
    """The CLIs `agents install` put in bot-bottle's prefix are not on PATH; `agents exec`
    runs them on the host (`setup-token`, `login`), and `agents ls` says where they are."""
    agent_cli(name)
    env = base_env(tmp_path)
    env["BOT_BOTTLE_AGENTS"] = str(real_agents_dir())
    r = bb(["agents", "exec", name, "--", "--version"], env, tmp_path)
    assert r.returncode == 0 and says in r.stdout, r.stdout + r.stderr
    listed = bb(["agents", "ls"], env, tmp_path).stdout
    assert str(real_agents_dir() / "bin" / name) in listed
