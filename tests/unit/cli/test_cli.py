"""The CLI's contract: exit codes, no tracebacks for bad input, JSON where scripts need it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def bb(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot_bottle", *args],
        capture_output=True, text=True, cwd=cwd, env=env, check=False,
    )  # fmt: skip


def test_init_then_check_then_plan(tmp_path: Path) -> None:
    assert bb("init", cwd=tmp_path).returncode == 0
    assert (tmp_path / "bot-bottle.yaml").is_file()
    again = bb("init", cwd=tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr
    env = {k: v for k, v in os.environ.items() if k != "CLAUDE_CODE_OAUTH_TOKEN"}
    env["BOT_BOTTLE_HOME"] = str(tmp_path.parent / f"{tmp_path.name}-state")
    check = bb("check", cwd=tmp_path, env=env)  # valid; a run would stop on the token
    assert check.returncode == 1 and "CLAUDE_CODE_OAUTH_TOKEN" in check.stdout, check.stdout
    plan = json.loads(bb("plan", "coder", "--json", cwd=tmp_path, env=env).stdout)
    route = plan["routes"][0]
    assert route["host"] == "api.anthropic.com" and route["source"] == "claude"
    assert route["auth"] == {
        "scheme": "Bearer",
        "slot": "EGRESS_TOKEN_0",
        "from": "CLAUDE_CODE_OAUTH_TOKEN",
    }
    assert "CLAUDE_CODE_OAUTH_TOKEN" not in plan["env"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            "bottles: {dev: {egres: {}}}",
            "bottles.dev.egres: unknown key 'egres' (did you mean 'egress'?)",
        ),
        ("bottles: {dev: {", "not valid YAML"),
        ("bottles: {a: {extends: a}}", "extends cycle"),
    ],
)
def test_bad_manifest_exit_2_one_message(tmp_path: Path, text: str, fragment: str) -> None:
    (tmp_path / "bot-bottle.yaml").write_text(text)
    p = bb("check", cwd=tmp_path)
    assert p.returncode == 2
    assert fragment in p.stderr
    assert "Traceback" not in p.stderr + p.stdout
    assert list(tmp_path.iterdir()) == [tmp_path / "bot-bottle.yaml"]  # nothing written


def test_manifest_env_var_and_flag(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(
        "bottles: {dev: {workspace: none, agent_provider: {template: command, command: [x]}}}\n"
        "agents: {a: {bottle: dev}}"
    )
    import os

    env = {**os.environ, "BOT_BOTTLE_MANIFEST": str(tmp_path / "m.yaml")}
    # Found and valid: 0, or 1 where this host cannot build a sandbox (`unshare -rn`).
    assert bb("check", cwd=tmp_path, env=env).returncode in (0, 1)
    assert bb("check", "-f", str(tmp_path / "m.yaml"), cwd=tmp_path).returncode in (0, 1)
    missing = bb("check", cwd=tmp_path)
    assert missing.returncode == 2 and "bot-bottle init" in missing.stderr


def test_schema_is_json_schema(tmp_path: Path) -> None:
    schema = json.loads(bb("schema", cwd=tmp_path).stdout)
    assert schema["title"] == "Manifest" and "bottles" in schema["properties"]


def test_version(tmp_path: Path) -> None:
    assert bb("version", cwd=tmp_path).stdout.startswith("bot-bottle ")


def test_help_lists_commands(tmp_path: Path) -> None:
    out = bb("--help", cwd=tmp_path).stdout
    for cmd in ("init", "check", "schema", "plan", "doctor"):
        assert cmd in out


def test_the_preflight_says_supervise_is_on(tmp_path: Path) -> None:
    (tmp_path / "bot-bottle.yaml").write_text(
        "bottles: {dev: {supervise: true}}\nagents: {a: {bottle: dev}}"
    )
    assert "supervise: on: the agent may ask" in bb("plan", "a", cwd=tmp_path).stdout
    assert json.loads(bb("plan", "a", "--json", cwd=tmp_path).stdout)["supervise"] == "on"


def test_check_plan_and_trust_say_whether_approved(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "BOT_BOTTLE_HOME": str(tmp_path / "state")}
    (tmp_path / "bot-bottle.yaml").write_text(
        "bottles: {dev: {workspace: none, env: {K: {from_host: HOME}}}}\n"
        "agents: {a: {bottle: dev}}\n"
    )
    plan = json.loads(bb("plan", "a", "--json", cwd=tmp_path, env=env).stdout)
    assert plan["approval"]["status"] == "unapproved"
    assert plan["loud"] == [{"field": "env K", "value": "from host $HOME",
                             "why": "copies the host's $HOME into the bottle"}]  # fmt: skip
    assert "approval: NOT APPROVED" in bb("check", cwd=tmp_path, env=env).stdout
    no_tty = bb("trust", cwd=tmp_path, env=env)
    assert no_tty.returncode == 2 and "--yes" in no_tty.stderr
    ok = bb("trust", "--yes", cwd=tmp_path, env=env)
    assert ok.returncode == 0 and "approved a in" in ok.stderr, ok.stderr
    assert "approval: approved" in bb("check", cwd=tmp_path, env=env).stdout
    (tmp_path / "bot-bottle.yaml").write_text(
        "bottles: {dev: {workspace: none, egress: {dlp: {enabled: false}}}}\n"
        "agents: {a: {bottle: dev}}\n"
    )
    plan = json.loads(bb("plan", "a", "--json", cwd=tmp_path, env=env).stdout)
    assert plan["approval"]["status"] == "changed"
    changes = plan["approval"]["changes"]
    assert "- env K: from host $HOME" in changes
    assert "+ dlp: OFF   <-- dlp.enabled: false: nothing scans what the agent sends" in changes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bot-bottle.yaml", "state"]


@pytest.mark.parametrize("depth", [0, 1, 2, 3, 4, 5, 6, 7])
def test_output_into_a_pipe_is_not_wrapped(tmp_path: Path, depth: int) -> None:
    """Paths of every length: into a pipe, a line is never split where 80 columns end
    (it was, so what a test or a user greps for depended on the path's length)."""
    ws = tmp_path.joinpath(*["d" * (3 + depth)] * (depth + 1))
    ws.mkdir(parents=True)
    (ws / "bot-bottle.yaml").write_text(
        "bottles:\n  b:\n    agent_provider: {template: command, command: ['true']}\n"
        "    workspace: {path: .}\nagents:\n  a: {bottle: b}\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "BOT_BOTTLE_HOME": str(tmp_path / "h")}
    r = bb("check", cwd=ws, env=env)
    assert f"ok {ws}/bot-bottle.yaml (1 agent, 1 bottle)\n" in r.stdout, r.stdout
    assert f"workspace: mount {ws}" in r.stdout, r.stdout


def test_small_words_read_right(tmp_path: Path) -> None:
    """`check` counts in English, `init -f` says it writes, `ls` says there is nothing."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "BOT_BOTTLE_HOME": str(tmp_path / "h")}
    (tmp_path / "bot-bottle.yaml").write_text(
        "bottles:\n  b:\n    agent_provider: {template: command, command: ['true']}\n"
        "    workspace: none\nagents:\n  a: {bottle: b}\n"
    )
    r = bb("check", cwd=tmp_path, env=env)
    assert r.returncode in (0, 1) and "(1 agent, 1 bottle)" in r.stdout, r.stdout + r.stderr
    assert "Where to write the manifest" in bb("init", "--help", cwd=tmp_path).stdout
    r = bb("ls", cwd=tmp_path, env=env)
    assert r.returncode == 0 and r.stdout.startswith("no bottles"), r.stdout
