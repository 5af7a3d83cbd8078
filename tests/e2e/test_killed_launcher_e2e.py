"""A launcher killed outright (SIGKILL, the OOM killer: no cleanup runs) takes its
bottle's agent with it, on every backend. An agent that outlived it would keep working,
network and all, while `bot-bottle ls` calls the bottle exited, and a later `resume`
would provision a HOME that agent is still writing to."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from e2e_support import base_env, bb, bottles

pytestmark = pytest.mark.e2e


def _processes_with(token: str) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if token.encode() in (d / "cmdline").read_bytes():
                out.append(int(d.name))
    return out


def test_agent_dies_with_a_killed_launcher(tmp_path: Path, bottle_backend: str) -> None:
    env = base_env(tmp_path)
    token = f"bb-e2e-kill-{os.getpid()}-{time.monotonic_ns()}"
    (tmp_path / "bot-bottle.yaml").write_text(
        "bottles:\n  b:\n"
        f"    agent_provider: {{template: command, command: [sh, -c, 'sleep 300; : {token}']}}\n"
        f"    workspace: none\n    backend: {bottle_backend}\n"
        "agents:\n  a: {bottle: b}\n"
    )
    launcher = subprocess.Popen([sys.executable, "-m", "bot_bottle", "run", "a", "-y"], env=env,
                                cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not _processes_with(token):
            assert time.monotonic() < deadline and launcher.poll() is None, "agent never ran"
            time.sleep(0.1)
        launcher.kill()
        launcher.wait()
        deadline = time.monotonic() + 15
        while left := _processes_with(token):
            assert time.monotonic() < deadline, f"the agent outlived its launcher: {left}"
            time.sleep(0.1)
    finally:
        for pid in _processes_with(token):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for b in bottles(env, tmp_path):
            bb(["rm", b["slug"]], env, tmp_path)
