"""Supervise with the real Claude Code CLI (issue 13, item 2's must-show): in a bottle
with `supervise: true`, `claude -p` talks to a fake Messages API whose scripted turns
make it (1) fetch a URL with its Bash tool and read the egress's readable 403, (2) call
the MCP tool `mcp__supervise__request_route`, (3) fetch the URL again once the tool says
granted. The test is the operator: it finds the request in `bot-bottle requests
--json`, runs `bot-bottle grant ID`, and checks what Claude's tool results said and
what the fake upstream received."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from e2e_support import base_env, bb, grep_tree, hand_over, real_agents_dir, trust
from fakes.provider_api import FakeProviderAPI

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration" / "egress"))

from egress_upstream import Upstream

pytestmark = pytest.mark.e2e

TOKEN = "sk-ant-oat01-FAKEHOSTTOKEN-supervise-5e2a"
UP_TOKEN = "up-token-FAKE-3b9d1c"  # the manifest route's credential, held by egress
DONE = "all-done-after-the-grant"


def tool_results(req: dict[str, Any]) -> list[str]:
    """The text of every tool_result in a Messages API request, in order."""
    out = []
    for m in req.get("messages", []):
        if m.get("role") != "user" or not isinstance(m.get("content"), list):
            continue
        for c in m["content"]:
            if c.get("type") == "tool_result":
                body = c.get("content", "")
                if isinstance(body, list):
                    body = "".join(p.get("text", "") for p in body if isinstance(p, dict))
                out.append(str(body))
    return out


def script(port: int) -> Any:
    """Claude's conversation, keyed on how many tool results it has sent back (so the
    side requests Claude Code makes, without tools, get the default reply)."""
    url = f"https://api.example.test:{port}/v1/data"
    curl = {"command": f"curl -sS --max-time 60 -w ' HTTP=%{{http_code}}' {url}",
            "description": "fetch the data"}  # fmt: skip
    ask = {"host": "api.example.test", "port": port, "path": "/v1/", "methods": ["GET"],
           "reason": "the task needs the v1 data", "wait_seconds": 300}  # fmt: skip

    def turn(req: dict[str, Any]) -> list[dict[str, Any]] | None:
        names = {t.get("name") for t in req.get("tools", [])}
        if "Bash" not in names:
            return None
        n = len(tool_results(req))
        if n == 0:
            return [{"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": curl}]
        if n == 1:
            return [{"type": "tool_use", "id": "toolu_02",
                     "name": "mcp__supervise__request_route", "input": ask}]  # fmt: skip
        if n == 2:
            return [{"type": "tool_use", "id": "toolu_03", "name": "Bash", "input": curl}]
        return [{"type": "text", "text": DONE}]

    return turn


def test_claude_asks_through_mcp_and_the_grant_goes_live(
    tmp_path: Path, bottle_backend: str, fake_api: FakeProviderAPI, upstream: Upstream
) -> None:
    bundle = tmp_path / "upstreams-ca.pem"
    bundle.write_bytes(fake_api.ca_path.read_bytes() + upstream.ca_path.read_bytes())
    fake_api.claude_turn = script(upstream.port)
    (tmp_path / "ws").mkdir()
    hand_over(tmp_path / "ws")
    (tmp_path / "bot-bottle.yaml").write_text(f"""
bottles:
  c:
    agent_provider: {{template: claude, auth_token: FAKE_CLAUDE_TOKEN_VAR}}
    supervise: true
    egress:
      hosts: {{api.anthropic.com: {fake_api.address}, api.example.test: 127.0.0.1}}
      upstream_ca: {bundle}
      ssrf_ip_allowlist: [{fake_api.address}/32, 127.0.0.1/32]
      routes:
        - host: api.example.test
          port: {upstream.port}
          path_allowlist: [/public/]
          auth: {{scheme: Bearer, token_ref: FAKE_UP_TOKEN_VAR}}
    workspace: {{mode: mount, path: ws}}
    backend: {bottle_backend}
agents:
  claude: {{bottle: c, prompt: "Fetch the v1 data."}}
""")
    env = base_env(tmp_path)
    env["FAKE_CLAUDE_TOKEN_VAR"] = TOKEN
    env["FAKE_UP_TOKEN_VAR"] = UP_TOKEN
    env["BOT_BOTTLE_AGENTS"] = str(real_agents_dir())
    trust(env, tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot_bottle", "run", "claude", "-y", "--",
         "--allowedTools", "Bash", "-p", "fetch the v1 data"],
        env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        asked = _wait_for_request(env, tmp_path, proc)
        reached_before_grant = list(upstream.records)
        g = bb(["grant", asked["id"]], env, tmp_path)
        assert g.returncode == 0, g.stderr
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    assert DONE in out, out[-2000:]
    assert asked["ask"] == {"kind": "route", "host": "api.example.test", "port": upstream.port,
                            "path": "/v1/", "methods": ["GET"], "question": "",
                            "reason": "the task needs the v1 data"}  # fmt: skip

    convo = [json.loads(q.body) for q in fake_api.requests
             if q.path.startswith("/v1/messages") and b'"Bash"' in q.body]  # fmt: skip
    # Claude was told about the tool, and offered it under its MCP name from the start
    # (not deferred behind ToolSearch).
    assert "bot-bottle-ask" in json.dumps(convo[0].get("system"))
    names = [t.get("name") for t in convo[0]["tools"]]
    assert "mcp__supervise__request_route" in names, names
    before, granted, after = tool_results(convo[-1])
    # Before the grant: the egress's readable 403, and nothing reached the upstream.
    assert "HTTP=403" in before and "to allow" in before, before
    assert reached_before_grant == []
    assert granted.startswith(f"granted: https://api.example.test:{upstream.port}/v1/ (GET)")
    assert asked["id"] in granted
    # After: the request Claude's Bash tool made reached the upstream.
    assert "HTTP=200" in after, after
    assert [r.path for r in upstream.records] == ["/v1/data"]
    # The grant carried the credential of the bottle's own route to that host and port
    # (the operator was told): injected by the egress, never seen by the agent.
    assert upstream.records[0].header("authorization") == f"Bearer {UP_TOKEN}"
    assert "with the credential of the bottle's route" in g.stdout, g.stdout
    # Neither credential reached a file the run wrote.
    assert grep_tree(tmp_path, TOKEN) == [] and grep_tree(tmp_path, UP_TOKEN) == []


def _wait_for_request(
    env: dict[str, str], cwd: Path, proc: subprocess.Popen[str]
) -> dict[str, Any]:
    end = time.monotonic() + 180
    while time.monotonic() < end:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"claude ended without asking:\n{out[-2000:]}\n{err[-3000:]}")
        r = bb(["requests", "--json"], env, cwd)
        assert r.returncode == 0, r.stderr
        pending = json.loads(r.stdout)
        if pending:
            return dict(pending[0])
        time.sleep(0.5)
    raise AssertionError("no request reached the operator")
