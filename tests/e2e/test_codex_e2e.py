"""The real Codex CLI (ChatGPT mode) in a namespace bottle answers through egress from
a fake ChatGPT backend; the host access token reaches only the fake, never the bottle."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
from e2e_support import agent_cli, base_env, bb, grep_tree, hand_over, trust, wrapped_agents
from fakes.provider_api import CODEX_REPLY, FakeProviderAPI

pytestmark = pytest.mark.e2e

SIGNATURE = "FAKEHOSTSIG-codex-e2e-41b7"


def _jwt(claims: dict[str, object], sig: str) -> str:
    def enc(o: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(o).encode()).rstrip(b"=").decode()

    return f"{enc({'alg': 'RS256', 'typ': 'JWT'})}.{enc(claims)}.{sig}"


def test_codex_exec_through_egress(
    tmp_path: Path, bottle_backend: str, fake_api: FakeProviderAPI
) -> None:
    real = agent_cli("codex")
    claims = {"exp": int(time.time()) + 86400, "email": "fake@example.com",
              "https://api.openai.com/auth": {"chatgpt_account_id": "acct-fake",
                                              "chatgpt_plan_type": "plus"}}  # fmt: skip
    access = _jwt(claims, SIGNATURE)
    host_codex = tmp_path / "host-codex"
    host_codex.mkdir()
    (host_codex / "auth.json").write_text(json.dumps({
        "auth_mode": "chatgpt", "OPENAI_API_KEY": None, "last_refresh": "2026-01-01T00:00:00Z",
        "tokens": {"id_token": _jwt(claims, "FAKEIDSIG"), "access_token": access,
                   "refresh_token": "rt-FAKE-REFRESH-e2e", "account_id": "acct-fake"},
    }))  # fmt: skip
    (tmp_path / "ws").mkdir()
    (tmp_path / "bot-bottle.yaml").write_text(f"""
bottles:
  x:
    agent_provider: {{template: codex, forward_host_credentials: true}}
    egress: {fake_api.egress_yaml("chatgpt.com", "api.openai.com")}
    workspace: {{mode: mount, path: ws}}
    backend: {bottle_backend}
agents:
  codex: {{bottle: x}}
""")
    env = base_env(tmp_path)
    env["CODEX_HOME"] = str(host_codex)
    env["BOT_BOTTLE_AGENTS"] = str(wrapped_agents(tmp_path, "codex", real))
    hand_over(tmp_path / "ws")
    trust(env, tmp_path)
    r = bb(["run", "codex", "-y", "--", "exec", "--skip-git-repo-check", "hi"], env, tmp_path)
    seen = [(q.method, q.path) for q in fake_api.requests]
    assert r.returncode == 0, (r.stderr[-3000:], seen)
    assert CODEX_REPLY in r.stdout

    # ChatGPT mode: routing discovery, then the Responses stream (after the WebSocket
    # attempt was refused), all on chatgpt.com and all with the host's token, which
    # only egress can have put there.
    paths = [q.path.split("?")[0] for q in fake_api.requests]
    assert "/backend-api/wham/accounts/check" in paths, seen
    streamed = [q for q in fake_api.requests
                if q.method == "POST" and q.path == "/backend-api/codex/responses"]  # fmt: skip
    assert streamed, seen
    last = json.loads(streamed[-1].body)  # the fake undoes Codex's zstd encoding
    assert last["input"][-1]["content"] == [{"type": "input_text", "text": "hi"}]
    for q in fake_api.requests:
        assert q.host == "chatgpt.com", seen
        assert q.headers.get("authorization") == f"Bearer {access}", (q.method, q.path)
        assert q.headers.get("chatgpt-account-id") == "acct-fake", (q.method, q.path)

    # Inside the bottle Codex sees only the placeholder login.
    dump = (tmp_path / "ws" / ".bottle-dump").read_text()
    assert "/home/agent/.codex/auth.json" in dump
    assert '"refresh_token": "bot-bottle-placeholder"' in dump
    for secret in (access, SIGNATURE, "FAKEIDSIG", "rt-FAKE-REFRESH-e2e"):
        assert secret not in dump
        assert secret not in r.stdout + r.stderr
        hits = grep_tree(tmp_path, secret, skip=(host_codex / "auth.json",))
        assert hits == [], hits
