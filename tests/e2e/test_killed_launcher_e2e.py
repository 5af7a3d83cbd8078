"""A launcher killed outright (SIGKILL, the OOM killer: no cleanup runs) takes its
bottle's agent with it, on every backend. An agent that outlived it would keep working,
network and all, while `bot-bottle ls` calls the bottle exited, and a later `resume`
would provision a HOME that agent is still writing to. The bottle left behind then
resumes as a fresh session."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from e2e_support import base_env, bb, bottles, trust

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


def _home(env: dict[str, str], slug: str, backend: str) -> Path:
    """The bottle's kept HOME as the host sees it: in the state dir, or the Docker volume."""
    if backend == "namespace":
        return Path(env["BOT_BOTTLE_HOME"]) / "bottles" / slug / "home"
    r = subprocess.run(["docker", "volume", "inspect", "-f", "{{.Mountpoint}}",
                        f"bb-{slug}-home"], capture_output=True, text=True, check=True)  # fmt: skip
    return Path(r.stdout.strip()) / "agent"


def test_agent_dies_with_a_killed_launcher(tmp_path: Path, bottle_backend: str) -> None:
    env = base_env(tmp_path)
    rest = f"{os.getpid()}-{time.monotonic_ns()}"
    # Only the inner shell's command line spells the whole token (the outer one holds
    # `$X-...`), and it starts after `.first` exists: a kill before then would leave
    # the resumed session without its marker.
    token = f"bb-e2e-kill-{rest}"
    (tmp_path / "bot-bottle.yaml").write_text(
        "bottles:\n  b:\n"
        "    agent_provider: {template: command, command: [sh, -c, "
        f"'if [ -e $HOME/.first ]; then echo resumed > $HOME/resumed; exit 0; fi; "
        f'X=bb-e2e-kill; touch $HOME/.first; exec sh -c "sleep 300; : $X-{rest}"\']}}\n'
        f"    workspace: none\n    backend: {bottle_backend}\n"
        "agents:\n  a: {bottle: b}\n"
    )
    trust(env, tmp_path)
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
        # The bottle it left behind resumes (a fresh session: nothing of the old one runs).
        (slug,) = [b["slug"] for b in bottles(env, tmp_path)]
        r = bb(["resume", slug, "-y"], env, tmp_path, timeout=180)
        assert r.returncode == 0, r.stdout + r.stderr
        assert (_home(env, slug, bottle_backend) / "resumed").read_text() == "resumed\n"
        # The killed launcher's sidecars (own sessions, credentials in their environment)
        # were stopped too: once the resumed session ended, nothing serves this bottle.
        state = str(Path(env["BOT_BOTTLE_HOME"]) / "bottles" / slug)
        assert _processes_with(state) == [], "sidecars of the killed launcher still run"
    finally:
        for pid in _processes_with(token) + _processes_with(str(tmp_path)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for b in bottles(env, tmp_path):
            bb(["rm", b["slug"]], env, tmp_path)
