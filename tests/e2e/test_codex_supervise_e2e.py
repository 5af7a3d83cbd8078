"""Supervise with the real Codex CLI: the MCP server bot-bottle registers (`-c
mcp_servers.supervise.*`) reaches Codex in a bottle with `supervise: true`; a scripted
function call of its `request_route` tool waits for the operator, who grants it from
`bot-bottle requests`, and the call's output that Codex sends back says granted."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from e2e_support import base_env, bb, hand_over, real_agents_dir, trust
from fakes.provider_api import CODEX_REPLY, FakeProviderAPI

pytestmark = pytest.mark.e2e


def _jwt(claims: dict[str, object], sig: str) -> str:
    def enc(o: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(o).encode()).rstrip(b"=").decode()

    return f"{enc({'alg': 'RS256', 'typ': 'JWT'})}.{enc(claims)}.{sig}"


# Codex 0.171 offers MCP tools as nested tools of its JavaScript `exec` tool (deferred
# behind the `mcp__supervise` namespace); the model calls them from a script.
CALL = """// @exec: {"yield_time_ms": 300000}
const r = await tools.mcp__supervise__request_route({host: "api.example.test", path: "/v1/",
  methods: ["GET"], reason: "the task needs the v1 data", wait_seconds: 300});
text(r);
"""


def outputs(req: dict[str, Any]) -> list[str]:
    """The output of every tool call Codex sends back, in order."""
    out = []
    for item in req.get("input", []):
        if isinstance(item, dict) and str(item.get("type")).endswith("call_output"):
            body = item.get("output", "")
            out.append(body if isinstance(body, str) else json.dumps(body))
    return out


def tool_names(req: dict[str, Any]) -> list[str]:
    """Tools offered, in `tools` or (Codex 0.171) an `additional_tools` input item."""
    offered = list(req.get("tools") or [])
    for item in req.get("input", []):
        if isinstance(item, dict) and item.get("type") == "additional_tools":
            offered += item.get("tools", [])
    names = []
    for t in offered:
        names.append(str(t.get("name", "")))
        names += [str(s.get("name")) for s in t.get("tools", []) if isinstance(s, dict)]
    return names


def test_codex_calls_request_route_and_reads_the_grant(
    tmp_path: Path, bottle_backend: str, fake_api: FakeProviderAPI
) -> None:
    seen_tools: list[list[str]] = []

    def turn(req: dict[str, Any]) -> list[dict[str, Any]] | None:
        names = tool_names(req)
        seen_tools.append(names)
        if "exec" not in names or outputs(req):
            return None
        return [{"type": "custom_tool_call", "name": "exec", "input": CALL}]

    fake_api.codex_turn = turn
    claims = {"exp": int(time.time()) + 86400, "email": "fake@example.com",
              "https://api.openai.com/auth": {"chatgpt_account_id": "acct-fake",
                                              "chatgpt_plan_type": "plus"}}  # fmt: skip
    host_codex = tmp_path / "host-codex"
    host_codex.mkdir()
    (host_codex / "auth.json").write_text(json.dumps({
        "auth_mode": "chatgpt", "OPENAI_API_KEY": None, "last_refresh": "2026-01-01T00:00:00Z",
        "tokens": {"id_token": _jwt(claims, "FAKEIDSIG"), "access_token": _jwt(claims, "SIG"),
                   "refresh_token": "rt-FAKE-REFRESH-e2e", "account_id": "acct-fake"},
    }))  # fmt: skip
    (tmp_path / "ws").mkdir()
    hand_over(tmp_path / "ws")
    (tmp_path / "bot-bottle.yaml").write_text(f"""
bottles:
  x:
    agent_provider: {{template: codex, forward_host_credentials: true}}
    supervise: true
    egress: {fake_api.egress_yaml("chatgpt.com", "api.openai.com")}
    workspace: {{mode: mount, path: ws}}
    backend: {bottle_backend}
agents:
  codex: {{bottle: x}}
""")
    env = base_env(tmp_path)
    env["CODEX_HOME"] = str(host_codex)
    env["BOT_BOTTLE_AGENTS"] = str(real_agents_dir())
    trust(env, tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot_bottle", "run", "codex", "-y", "--", "exec",
         "--skip-git-repo-check", "fetch the v1 data"],
        env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        end = time.monotonic() + 180
        asked: dict[str, Any] = {}
        while not asked:
            if proc.poll() is not None:
                out, err = proc.communicate()
                raise AssertionError(f"codex ended without asking ({seen_tools}):\n"
                                     f"{out[-2000:]}\n{err[-3000:]}")  # fmt: skip
            assert time.monotonic() < end, "no request reached the operator"
            r = bb(["requests", "--json"], env, tmp_path)
            pending = json.loads(r.stdout) if r.returncode == 0 else []
            asked = dict(pending[0]) if pending else {}
            time.sleep(0.5)
        g = bb(["grant", asked["id"]], env, tmp_path)
        assert g.returncode == 0, g.stderr
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    assert CODEX_REPLY in out
    assert asked["ask"]["host"] == "api.example.test" and asked["ask"]["path"] == "/v1/"
    streamed = [json.loads(q.body) for q in fake_api.requests
                if q.method == "POST" and q.path == "/backend-api/codex/responses"]  # fmt: skip
    (granted,) = outputs(streamed[-1])
    assert "granted: https://api.example.test/v1/ (GET)" in granted, granted
    assert asked["id"] in granted
    # The prompt note reached Codex's instructions (its global AGENTS.md).
    assert "bot-bottle-ask" in json.dumps(streamed[0])
