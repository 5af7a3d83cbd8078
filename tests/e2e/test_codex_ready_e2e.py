"""Issue 12 item 6 for Codex: the real Codex TUI, in a tmux terminal, starts ready to
work in the bottle's workspace (no trust question) on `run` and on `resume`, and
`resume --continue` (`codex resume --last`) carries the previous conversation to the
(fake) ChatGPT backend."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from e2e_support import agent_cli, base_env, bb, bottles, hand_over, real_agents_dir, trust
from fakes.provider_api import FakeProviderAPI
from test_codex_e2e import _jwt
from tmux_session import EXIT_MARK, TmuxSession

pytestmark = pytest.mark.e2e

TRUST_QUESTION = "trust the contents of this directory"


def _setup(tmp: Path, api: FakeProviderAPI, backend: str) -> dict[str, str]:
    claims = {"exp": int(time.time()) + 86400, "email": "fake@example.com",
              "https://api.openai.com/auth": {"chatgpt_account_id": "acct-fake",
                                              "chatgpt_plan_type": "plus"}}  # fmt: skip
    host_codex = tmp / "host-codex"
    host_codex.mkdir()
    (host_codex / "auth.json").write_text(json.dumps({
        "auth_mode": "chatgpt", "OPENAI_API_KEY": None, "last_refresh": "2026-01-01T00:00:00Z",
        "tokens": {"id_token": _jwt(claims, "FAKEIDSIG"), "access_token": _jwt(claims, "SIG"),
                   "refresh_token": "rt-FAKE-REFRESH-e2e", "account_id": "acct-fake"},
    }))  # fmt: skip
    (tmp / "ws").mkdir()
    (tmp / "bot-bottle.yaml").write_text(f"""
bottles:
  x:
    agent_provider: {{template: codex, forward_host_credentials: true}}
    egress: {api.egress_yaml("chatgpt.com", "api.openai.com")}
    workspace: {{mode: mount, path: ws}}
    backend: {backend}
agents:
  codex: {{bottle: x}}
""")
    env = base_env(tmp)
    env["CODEX_HOME"] = str(host_codex)
    env["BOT_BOTTLE_AGENTS"] = str(real_agents_dir())
    env["TERM"] = "xterm-256color"
    hand_over(tmp / "ws")
    trust(env, tmp)
    return env


def _inputs(api: FakeProviderAPI, since: int) -> list[str]:
    out = []
    for q in api.requests[since:]:
        if q.method == "POST" and q.path == "/backend-api/codex/responses":
            out.append(json.dumps(json.loads(q.body).get("input", [])))
    return out


def _converse(term: TmuxSession, api: FakeProviderAPI, words: str) -> None:
    """Wait for the composer (failing on a trust question), say `words`, wait until the
    fake backend received them and Codex shows its answer, then /quit and wait."""
    end = time.monotonic() + 120
    while time.monotonic() < end:
        s = term.screen()
        assert TRUST_QUESTION not in s, s
        assert EXIT_MARK not in s, s
        if "Press enter to continue" in s:
            term.keys("Enter")
        elif "for shortcuts" in s and "Resuming session" not in s:
            break
        time.sleep(0.3)
    since = len(api.requests)
    term.type(words)
    end = time.monotonic() + 90
    nudge = time.monotonic() + 5
    while not any(words in i for i in _inputs(api, since)):
        assert time.monotonic() < end, term.log[-1]
        if time.monotonic() > nudge and f"\u203a {words}" in term.screen():
            # Codex takes a fast burst of keys for a paste, and an Enter inside it for
            # a newline: the words are still in the composer, so submit them again.
            term.keys("Enter")
            nudge = time.monotonic() + 5
        time.sleep(0.2)
    term.wait("Worked for")
    term.type("/quit")
    term.wait(EXIT_MARK, timeout=60)


def test_codex_tui_ready_and_continues(
    tmp_path: Path, bottle_backend: str, fake_api: FakeProviderAPI
) -> None:
    agent_cli("codex")
    env = _setup(tmp_path, fake_api, bottle_backend)
    first = TmuxSession(tmp_path, "first")
    try:
        first.start_bb(["run", "codex", "-y", "--keep"], env, tmp_path)
        _converse(first, fake_api, "remember the word zanzibar")
    finally:
        first.kill()
    assert not first.seen(TRUST_QUESTION)
    slugs = [b["slug"] for b in bottles(env, tmp_path)]
    assert first.seen(f"bot-bottle resume {slugs[0]} --continue"), first.log[-1]

    before = len(fake_api.requests)
    second = TmuxSession(tmp_path, "second")
    try:
        second.start_bb(["resume", slugs[0], "-y", "--continue"], env, tmp_path)
        _converse(second, fake_api, "what was the word")
    finally:
        second.kill()
    assert not second.seen(TRUST_QUESTION)
    later = [i for i in _inputs(fake_api, before) if "what was the word" in i]
    seen = [(q.method, q.path) for q in fake_api.requests[before:]]
    # The turn's request carries the earlier turn (a title request may carry only the
    # new words, so look at all of them).
    if not any("zanzibar" in i for i in later):
        pytest.fail(f"{seen}\n{_inputs(fake_api, before)}\n" + "\n=====\n".join(second.log))
    assert bb(["rm", *slugs], env, tmp_path).returncode == 0
