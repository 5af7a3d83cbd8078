"""The terminal survives whatever ends an attached bottle (issue 12, item 1).

An agent (a TUI) puts the terminal in raw mode; when the bottle is ended from outside
(`bot-bottle stop` or `rm` in another terminal) or the agent dies without restoring it,
the attached `run` must hand the shell back its terminal as it found it, and say why
the bottle ended, with an exit code that means something. Driven through a real
terminal (tmux), as a person meets it: `stty -a` after the run is the proof.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import base_env, bb, bottles, need, trust, wait_for

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
# The agent makes the terminal what a TUI makes it, says so, and then waits to be
# stopped (or, for "crash", dies without putting the terminal back; for "egress", dies
# once its network is gone).
AGENT = "stty -isig -icanon -echo; echo AGENT-READY; {tail}"
TAILS = {
    "crash": "exit 3",
    "egress": "while curl -s -o /dev/null --max-time 5 http://probe.test/; do sleep 0.2; done;"
    " exit 4",
}


class Pane:
    """One tmux session on a private server socket: a real terminal to run `bot-bottle`
    on, typed into with send-keys and read with capture-pane."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.sock = str(tmp / "tmux.sock")
        self.env = env

    def tmux(self, *args: str) -> str:
        r = subprocess.run(["tmux", "-S", self.sock, *args], env=self.env, text=True,
                           capture_output=True, check=True)  # fmt: skip
        return r.stdout

    def start(self, cwd: Path) -> None:
        self.tmux("new-session", "-d", "-x", "160", "-y", "50", "-c", str(cwd),
                  "bash --norc --noprofile")  # fmt: skip

    def type(self, line: str) -> None:
        self.tmux("send-keys", "-l", line)
        self.tmux("send-keys", "Enter")

    def text(self) -> str:
        return self.tmux("capture-pane", "-p", "-J", "-S", "-200")

    def wait(self, needle: str, timeout: float = 120) -> str:
        end = time.monotonic() + timeout
        while needle not in (out := self.text()):
            assert time.monotonic() < end, f"never saw {needle!r} in the pane:\n{out}"
            time.sleep(0.1)
        return out

    def kill(self) -> None:
        subprocess.run(["tmux", "-S", self.sock, "kill-server"], env=self.env,
                       capture_output=True, check=False)  # fmt: skip


@pytest.fixture
def pane(tmp_path: Path) -> Iterator[Pane]:
    need(os.path.exists("/usr/bin/tmux"), "tmux is not installed (scripts/setup --test)")
    env = {**base_env(tmp_path), "TERM": "xterm-256color",
           "PYTHONPATH": os.environ.get("PYTHONPATH", "")}  # fmt: skip
    p = Pane(tmp_path, env)
    yield p
    p.kill()


def _manifest(tmp: Path, backend: str, tail: str) -> None:
    cmd = AGENT.format(tail=tail)
    (tmp / "bot-bottle.yaml").write_text(
        "bottles:\n  b:\n"
        f"    agent_provider: {{template: command, command: [sh, -c, {cmd!r}]}}\n"
        f"    workspace: none\n    backend: {backend}\n"
        "agents:\n  term: {bottle: b}\n"
    )


def _stty(path: Path) -> set[str]:
    return set(path.read_text().split())


@pytest.mark.parametrize("how", ["stop", "rm", "crash", "signal", "egress"])
def test_attached_run_restores_the_terminal(
    tmp_path: Path, bottle_backend: str, pane: Pane, how: str
) -> None:
    env = pane.env
    _manifest(tmp_path, bottle_backend, TAILS.get(how, "exec sleep 300"))
    trust(env, tmp_path)
    before, after, rc = tmp_path / "before.txt", tmp_path / "after.txt", tmp_path / "rc.txt"
    bot = f"{shlex.quote(sys.executable)} -m bot_bottle"
    pane.start(tmp_path)
    pane.type(f"stty -a > {before}; {bot} run term -y; echo $? > {rc}; stty -a > {after}")
    if how == "crash":
        wait_for(rc, "\n", timeout=180)
    else:
        pane.wait("AGENT-READY", timeout=180)
        (slug,) = [b["slug"] for b in bottles(env, tmp_path) if b["status"] == "running"]
        pids = json.loads(bb(["info", slug], env, tmp_path).stdout)["pids"]
        if how == "signal":  # the launcher itself, as `kill` or a closing session would
            os.kill(pids["launcher"], signal.SIGTERM)
        elif how == "egress":  # the agent's way out dies; the agent gives up
            os.killpg(pids["egress"], signal.SIGKILL)
        else:
            r = bb([how, slug], env, tmp_path)
            assert r.returncode == 0, r.stderr
        wait_for(rc, "\n", timeout=60)
    wait_for(after, "speed")
    shown = pane.text()
    modes = _stty(after)
    assert {"echo", "icanon", "isig"} <= modes, f"terminal left as:\n{after.read_text()}"
    assert modes & {"echo", "icanon", "isig", "-echo", "-icanon", "-isig"} == (
        _stty(before) & {"echo", "icanon", "isig", "-echo", "-icanon", "-isig"}
    )
    code = int(rc.read_text())
    if how == "crash":
        assert code == 3, shown
        assert "the agent exited with code 3" in shown, shown
    elif how == "signal":
        assert code == 143, shown
        assert "the agent exited with code 143 (SIGTERM)" in shown, shown
    elif how == "egress":
        assert code == 4, shown
        assert "the agent exited with code 4; the egress sidecar had died" in shown, shown
    else:
        assert code == 143, shown  # 128 + SIGTERM, as for any program stopped that way
        assert f"stopped by `bot-bottle {how}` from another terminal" in shown, shown
    assert bottles(env, tmp_path) == [] or how == "stop", bottles(env, tmp_path)
    assert re.search(r"bottle \S+ started", shown) and re.search(r"bottle \S+ ended", shown)
    for b in bottles(env, tmp_path):
        bb(["rm", b["slug"]], env, tmp_path)
