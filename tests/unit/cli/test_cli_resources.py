"""`resources` at the CLI: `check` refuses what `run` could not start (1e400 CPUs
crashed `run` on Docker), and the preflight shows the limits a launch will apply."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

MANIFEST = """
bottles:
  dev:
    agent_provider: {template: command, command: [sh]}
    workspace: none
    resources: %s
agents:
  coder: {bottle: dev}
"""


def bb(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot_bottle", *args], capture_output=True,
                          text=True, cwd=cwd, check=False)  # fmt: skip


@pytest.mark.parametrize(
    ("resources", "field", "fragment"),
    [
        ("{cpus: 1e400}", "bottles.dev.resources.cpus", "expected a number of CPUs"),
        ("{cpus: 0}", "bottles.dev.resources.cpus", "between 0.01 and 1024"),
        ("{memory: 0}", "bottles.dev.resources.memory", "at least 6m"),
        ("{memory: 64q}", "bottles.dev.resources.memory", "like 512m, 2g"),
    ],
)
def test_check_refuses_what_run_could_not_start(
    tmp_path: Path, resources: str, field: str, fragment: str
) -> None:
    (tmp_path / "bot-bottle.yaml").write_text(MANIFEST % resources)
    r = bb("check", cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert field in r.stderr and fragment in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_preflight_shows_the_limits(tmp_path: Path) -> None:
    (tmp_path / "bot-bottle.yaml").write_text(MANIFEST % "{cpus: 0.5, memory: 64m}")
    r = bb("plan", "coder", cwd=tmp_path)
    # 1: `plan` also reports what this host lacks for the run (predicting `run`).
    assert r.returncode in (0, 1), r.stderr
    assert "resources: cpus 0.5, memory 64m" in r.stdout, r.stdout
    data = json.loads(bb("plan", "coder", "--json", cwd=tmp_path).stdout)
    assert data["resources"] == {"cpus": 0.5, "memory": "64m"}
    (tmp_path / "bot-bottle.yaml").write_text(MANIFEST % "{}")
    assert "resources: no limits" in bb("plan", "coder", cwd=tmp_path).stdout
