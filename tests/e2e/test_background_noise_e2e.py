"""The agents' own background traffic does not fill the denial list: each provider turns
off what its CLI lets it turn off, and marks what remains as expected, which `logs
--denied` and `suggest` leave out unless asked (`--all`). Run with the real Claude Code
and Codex CLIs against the fake APIs; the test counts what a real session is denied."""

from __future__ import annotations

import base64
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from e2e_support import agent_cli, base_env, bb, hand_over, need, real_agents_dir, trust
from fakes.provider_api import CLAUDE_REPLY, CODEX_REPLY, FakeProviderAPI

pytestmark = pytest.mark.e2e


def _denials(env: dict[str, str], cwd: Path, *flags: str) -> list[dict[str, Any]]:
    slug = json.loads(bb(["ls", "--json"], env, cwd).stdout)[0]["slug"]
    r = bb(["logs", slug, "--denied", "--json", *flags], env, cwd)
    assert r.returncode == 0, r.stderr
    return [json.loads(x) for x in r.stdout.splitlines()]


def _jwt(claims: dict[str, object], sig: str) -> str:
    def enc(o: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(o).encode()).rstrip(b"=").decode()

    return f"{enc({'alg': 'RS256', 'typ': 'JWT'})}.{enc(claims)}.{sig}"


def _manifest(tmp: Path, provider: str, egress: str) -> None:
    (tmp / "ws").mkdir()
    hand_over(tmp / "ws")
    (tmp / "bot-bottle.yaml").write_text(f"""
bottles:
  b:
    agent_provider: {provider}
    egress: {egress}
    workspace: {{mode: mount, path: ws}}
    backend: namespace
agents:
  a: {{bottle: b}}
""")


ROUTE_RULES = ("route", "connect", "port", "path", "method")


def _report(name: str, shown: list[dict[str, Any]], every: list[dict[str, Any]]) -> None:
    rows = sorted({f"{d.get('method', '')} {d.get('host')}{d.get('path', '')}" for d in every})
    print(f"\n{name}: {len(every)} denials in all, {len(shown)} shown by --denied: {rows}")
    # What a route would fix is what the operator reads; none of it may be the CLI's own.
    # (An upstream error, e.g. a stream the CLI cancelled as it quit, is not a denial.)
    routed = [d for d in every if d.get("decision") == "deny" and d.get("rule") in ROUTE_RULES]
    assert [d for d in routed if not d.get("expected")] == [], shown
    assert not any(d.get("expected") for d in shown), shown


def test_claude_background_traffic_is_quiet(
    tmp_path: Path, fake_api: FakeProviderAPI, bwrap_ok: None
) -> None:
    agent_cli("claude")
    _manifest(
        tmp_path,
        "{template: claude, auth_token: FAKE_TOKEN}",
        fake_api.egress_yaml("api.anthropic.com"),
    )
    env = base_env(tmp_path)
    env["FAKE_TOKEN"] = "sk-ant-oat01-FAKE-noise-e2e"
    env["BOT_BOTTLE_AGENTS"] = str(real_agents_dir())
    trust(env, tmp_path)
    r = bb(["run", "a", "-y", "--keep", "--", "-p", "hi"], env, tmp_path, timeout=240)
    assert r.returncode == 0, r.stderr
    assert CLAUDE_REPLY in r.stdout
    time.sleep(1)  # requests the CLI fired on its way out are audited as they end
    every = _denials(env, tmp_path, "--all")
    shown = _denials(env, tmp_path)
    _report("claude", shown, every)


def test_codex_background_traffic_is_quiet(
    tmp_path: Path, fake_api: FakeProviderAPI, bwrap_ok: None
) -> None:
    agent_cli("codex")
    claims = {"exp": int(time.time()) + 86400, "email": "fake@example.com",
              "https://api.openai.com/auth": {"chatgpt_account_id": "acct-fake",
                                              "chatgpt_plan_type": "plus"}}  # fmt: skip
    host_codex = tmp_path / "host-codex"
    host_codex.mkdir()
    (host_codex / "auth.json").write_text(json.dumps({
        "auth_mode": "chatgpt", "OPENAI_API_KEY": None, "last_refresh": "2026-01-01T00:00:00Z",
        "tokens": {"id_token": _jwt(claims, "FAKEIDSIG"), "access_token": _jwt(claims, "SIG"),
                   "refresh_token": "rt-FAKE-REFRESH-noise", "account_id": "acct-fake"},
    }))  # fmt: skip
    _manifest(
        tmp_path,
        "{template: codex, forward_host_credentials: true}",
        fake_api.egress_yaml("chatgpt.com", "api.openai.com"),
    )
    env = base_env(tmp_path)
    env["CODEX_HOME"] = str(host_codex)
    env["BOT_BOTTLE_AGENTS"] = str(real_agents_dir())
    trust(env, tmp_path)
    r = bb(
        ["run", "a", "-y", "--keep", "--", "exec", "--skip-git-repo-check", "hi"],
        env,
        tmp_path,
        timeout=240,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert CODEX_REPLY in r.stdout
    time.sleep(1)
    every = _denials(env, tmp_path, "--all")
    shown = _denials(env, tmp_path)
    _report("codex", shown, every)
    # Usage analytics (chatgpt.com/.../analytics-events, cancelled at exit) and OTel
    # metrics (ab.chatgpt.com) are switched off, not merely hidden.
    telemetry = [d for d in every if "analytics" in str(d.get("path")) or "ab." in d["host"]]
    assert telemetry == [], telemetry


class Tmux:
    """One command in a detached tmux session on a private server (a terminal for an
    interactive agent); the screen is read with capture-pane."""

    def __init__(self, command: str) -> None:
        self.base = ["tmux", "-L", f"bb-noise-{os.getpid()}"]
        subprocess.run([*self.base, "new-session", "-d", "-s", "t", "-x", "160", "-y", "45",
                        command], check=True)  # fmt: skip

    def screen(self) -> str:
        out = subprocess.run([*self.base, "capture-pane", "-p", "-t", "t"],
                             capture_output=True, text=True, check=False)  # fmt: skip
        return out.stdout

    def wait_for(self, *texts: str, timeout: float = 90) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            screen = self.screen()
            for text in texts:
                if text in screen:
                    return text
            time.sleep(0.2)
        raise AssertionError(f"none of {texts} on screen:\n{self.screen()}")

    def keys(self, *keys: str) -> None:
        # check=False: the session ends with the agent, maybe before the last key.
        subprocess.run([*self.base, "send-keys", "-t", "t", *keys], check=False)

    def close(self) -> None:
        subprocess.run([*self.base, "kill-server"], check=False, capture_output=True)


def _converse(env: dict[str, str], cwd: Path, ready: str, reply: str) -> None:
    """`run -y --keep` the agent's interactive UI in tmux: past the folder-trust dialog
    if it shows one, say hi, read the reply, ^C, and wait for the bottle to stop."""
    run = [sys.executable, "-m", "bot_bottle", "run", "a", "-y", "--keep"]
    assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    tui = Tmux(f"cd {shlex.quote(str(cwd))} && env -i {assigns} {shlex.join(run)}")
    try:
        if tui.wait_for("trust this folder", ready) == "trust this folder":
            tui.keys("Enter")
            tui.wait_for(ready)
        tui.keys("hi")
        time.sleep(0.5)  # a TUI takes typed text and Enter as separate events
        tui.keys("Enter")
        tui.wait_for(reply)
        for _ in range(2):
            tui.keys("C-c")
            time.sleep(0.5)
        end = time.monotonic() + 60
        while any(b["status"] == "running" for b in json.loads(
            bb(["ls", "--json"], env, cwd).stdout)):  # fmt: skip
            assert time.monotonic() < end, tui.screen()
            time.sleep(0.5)
    finally:
        tui.close()


def test_claude_interactive_background_traffic_is_quiet(
    tmp_path: Path, fake_api: FakeProviderAPI, bwrap_ok: None
) -> None:
    """An interactive session fetches the official plugin marketplace at startup
    (downloads.claude.ai, then a git clone from github.com): measured, 2 denials with
    the settings Claude had before, none now."""
    agent_cli("claude")
    need(shutil.which("tmux") is not None, "tmux is not installed (scripts/setup --test)")
    _manifest(
        tmp_path,
        "{template: claude, auth_token: FAKE_TOKEN}",
        fake_api.egress_yaml("api.anthropic.com"),
    )
    env = base_env(tmp_path)
    env["FAKE_TOKEN"] = "sk-ant-oat01-FAKE-noise-tui"
    env["BOT_BOTTLE_AGENTS"] = str(real_agents_dir())
    env["TERM"] = "xterm-256color"
    trust(env, tmp_path)
    _converse(env, tmp_path, "for shortcuts", CLAUDE_REPLY)
    every = _denials(env, tmp_path, "--all")
    shown = _denials(env, tmp_path)
    _report("claude interactive", shown, every)


def test_codex_interactive_background_traffic_is_quiet(
    tmp_path: Path, fake_api: FakeProviderAPI, bwrap_ok: None
) -> None:
    agent_cli("codex")
    need(shutil.which("tmux") is not None, "tmux is not installed (scripts/setup --test)")
    claims = {"exp": int(time.time()) + 86400, "email": "fake@example.com",
              "https://api.openai.com/auth": {"chatgpt_account_id": "acct-fake",
                                              "chatgpt_plan_type": "plus"}}  # fmt: skip
    host_codex = tmp_path / "host-codex"
    host_codex.mkdir()
    (host_codex / "auth.json").write_text(json.dumps({
        "auth_mode": "chatgpt", "OPENAI_API_KEY": None, "last_refresh": "2026-01-01T00:00:00Z",
        "tokens": {"id_token": _jwt(claims, "FAKEIDSIG"), "access_token": _jwt(claims, "SIG"),
                   "refresh_token": "rt-FAKE-REFRESH-noise", "account_id": "acct-fake"},
    }))  # fmt: skip
    _manifest(
        tmp_path,
        "{template: codex, forward_host_credentials: true}",
        fake_api.egress_yaml("chatgpt.com", "api.openai.com"),
    )
    env = base_env(tmp_path)
    env["CODEX_HOME"] = str(host_codex)
    env["BOT_BOTTLE_AGENTS"] = str(real_agents_dir())
    env["TERM"] = "xterm-256color"
    trust(env, tmp_path)
    _converse(env, tmp_path, "Ask Codex to do anything", CODEX_REPLY)
    every = _denials(env, tmp_path, "--all")
    shown = _denials(env, tmp_path)
    _report("codex interactive", shown, every)
