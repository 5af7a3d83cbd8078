"""`bot-bottle agents exec NAME -- ARGS` runs the installed CLI on the host (to log in),
as a plain process: its arguments as given, the user's environment without bot-bottle's
own settings, default signal dispositions; `agents ls` says where each CLI is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SHIM = """#!/bin/sh
echo "argv: $0 $*"
env | sort
grep '^SigIgn' /proc/self/status
"""


def _prefix(tmp: Path) -> Path:
    prefix = tmp / "agents"
    (prefix / "bin").mkdir(parents=True)
    pkg = prefix / "lib" / "node_modules" / "@anthropic-ai" / "claude-code"
    pkg.mkdir(parents=True)
    (pkg / "package.json").write_text(json.dumps({"version": "9.9.9"}))
    (prefix / "bin" / "claude").write_text(SHIM)
    (prefix / "bin" / "claude").chmod(0o755)
    return prefix


def _bb(args: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp),
           "BOT_BOTTLE_HOME": str(tmp / "bb"), "BOT_BOTTLE_AGENTS": str(tmp / "agents"),
           "BOT_BOTTLE_MANIFEST": str(tmp / "m.yaml"), "USER_THING": "kept"}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "bot_bottle", *args], env=env, cwd=tmp,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip


def test_exec_runs_the_installed_cli_plainly(tmp_path: Path) -> None:
    prefix = _prefix(tmp_path)
    r = _bb(["agents", "exec", "claude", "--", "setup-token", "--flag", "x y"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"argv: {prefix / 'bin' / 'claude'} setup-token --flag x y" in r.stdout
    assert "USER_THING=kept" in r.stdout
    assert "BOT_BOTTLE_" not in r.stdout  # bot-bottle's settings are not the agent's
    assert "DISABLE_AUTOUPDATER=1" in r.stdout  # the prefix bottles run from stays pinned
    ignored = int(next(x for x in r.stdout.splitlines() if x.startswith("SigIgn")).split()[1], 16)
    assert ignored & (1 << (13 - 1)) == 0, "SIGPIPE ignored, as Python left it"


def test_exec_names_the_fix(tmp_path: Path) -> None:
    r = _bb(["agents", "exec", "codex", "--", "login"], tmp_path)
    assert r.returncode != 0
    assert "bot-bottle agents install codex" in r.stderr
    r = _bb(["agents", "exec", "clod"], tmp_path)
    assert r.returncode != 0 and "known: claude, codex" in r.stderr


def test_ls_shows_paths(tmp_path: Path) -> None:
    prefix = _prefix(tmp_path)
    r = _bb(["agents", "ls"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"claude 9.9.9  {prefix / 'bin' / 'claude'}" in r.stdout
    assert "bot-bottle agents exec" in r.stdout
