"""bot-bottle's own lifecycle with the real egress sidecar: the warm path is used when
running, killing the sidecar leaves the agent with no network (fail closed), and `ls`
then shows the bottle as degraded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from e2e_support import base_env, bb, bottles, hand_over, trust, wait_for

pytestmark = pytest.mark.e2e

AGENT = """
probe() {  # $1: output file. A plain-HTTP request: egress answers it with a 403 body.
  curl -sS --max-time 5 http://example.com/ > "$1" 2>&1 || echo "curl-failed $?" >> "$1"
  echo "probe-done" >> "$1"
}
probe /workspace/before.txt
while [ ! -e /workspace/go ]; do sleep 0.05; done
probe /workspace/after.txt
"""


def manifest(tmp: Path) -> Path:
    ws = tmp / "ws"
    ws.mkdir()
    (ws / "agent.sh").write_text(AGENT)
    (tmp / "bot-bottle.yaml").write_text(
        "bottles:\n  b:\n    agent_provider: {template: command, command: [sh, /workspace/agent.sh]}\n"
        "    workspace: {mode: mount, path: ws}\n    backend: namespace\n"
        "agents:\n  a: {bottle: b}\n"
    )
    hand_over(ws)
    return ws


def test_warm_sidecar_fail_closed_and_degraded(tmp_path: Path, bwrap_ok: None) -> None:
    ws = manifest(tmp_path)
    env = base_env(tmp_path)
    trust(env, tmp_path)
    warm = bb(["egress", "warm"], env, tmp_path)
    assert warm.returncode == 0 and "egress helper running" in warm.stdout, warm.stderr
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot_bottle", "run", "a", "-y", "--keep"],
            env=env, cwd=tmp_path, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        before = wait_for(ws / "before.txt", "probe-done")
        assert "bot-bottle egress denied GET example.com/" in before, before

        (bottle,) = bottles(env, tmp_path)
        assert bottle["status"] == "running"
        info = json.loads(bb(["info", bottle["slug"]], env, tmp_path).stdout)
        assert info["extra"]["sidecar_mode"] == "warm"
        egress_pid = info["pids"]["egress"]
        os.killpg(egress_pid, signal.SIGKILL)
        end = time.monotonic() + 10
        while (listed := bottles(env, tmp_path))[0]["status"] != "degraded":
            assert time.monotonic() < end, listed
            time.sleep(0.05)

        (ws / "go").touch()
        proc.communicate(timeout=60)
        after = (ws / "after.txt").read_text()
        assert "curl-failed" in after, after
        assert "bot-bottle egress denied" not in after
        assert bb(["rm", bottle["slug"]], env, tmp_path).returncode == 0
    finally:
        assert bb(["egress", "warm", "--stop"], env, tmp_path).returncode == 0
