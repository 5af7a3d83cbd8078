"""A microVM bottle as a person at a terminal meets it (issue 15, item 3): the agent's
terminal follows the window's size and gets ^C as SIGINT, the terminal is restored
after; `--keep`, `resume` (HOME survives), `stop` from another terminal (exit code
143), a launcher killed outright (QEMU and virtiofsd die with it), `ls`, `logs`, `rm`,
and nothing left behind. Under TCG each boot costs seconds: three boots in all."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import base_env, bb, bottles, hand_over, need, trust, wait_for

pytestmark = pytest.mark.e2e

BOOT_S = 240  # a boot under TCG on a busy 2-core host


def _vm_processes(state_dir: Path) -> list[int]:
    """QEMU and virtiofsd processes serving this bottle (their command lines name its
    state dir: the console log, the shared HOME)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmd = (d / "cmdline").read_bytes()
            if str(state_dir).encode() in cmd and (b"qemu-system" in cmd or b"virtiofsd" in cmd):
                out.append(int(d.name))
    return out


def _gone(pids: list[int], timeout: float = 15) -> list[int]:
    end = time.monotonic() + timeout
    while (alive := [p for p in pids if Path(f"/proc/{p}").exists()]) and time.monotonic() < end:
        time.sleep(0.1)
    return alive


class Pane:
    """A tmux terminal (a private server), typed into and read back."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.sock, self.env = str(tmp / "tmux.sock"), env

    def tmux(self, *args: str) -> str:
        r = subprocess.run(["tmux", "-S", self.sock, *args], env=self.env, text=True,
                           capture_output=True, check=True)  # fmt: skip
        return r.stdout

    def text(self) -> str:
        return self.tmux("capture-pane", "-p", "-J", "-S", "-200")

    def wait(self, needle: str, timeout: float = 60) -> str:
        end = time.monotonic() + timeout
        while needle not in (out := self.text()):
            assert time.monotonic() < end, f"never saw {needle!r} in the pane:\n{out}"
            time.sleep(0.1)
        return out


@pytest.fixture
def pane(tmp_path: Path) -> Iterator[Pane]:
    need(os.path.exists("/usr/bin/tmux"), "tmux is not installed (scripts/setup --test)")
    env = {**base_env(tmp_path), "TERM": "xterm-256color",
           "PYTHONPATH": os.environ.get("PYTHONPATH", "")}  # fmt: skip
    p = Pane(tmp_path, env)
    yield p
    subprocess.run(["tmux", "-S", p.sock, "kill-server"], capture_output=True, check=False)


# The agent reports its terminal's size at start and on every SIGWINCH, and ends with 5
# on SIGINT.
TERMINAL_AGENT = """
import fcntl, signal, struct, sys, termios, time
def size():
    rows, cols, _x, _y = struct.unpack("HHHH", fcntl.ioctl(0, termios.TIOCGWINSZ, bytes(8)))
    return f"{rows}x{cols}"
signal.signal(signal.SIGWINCH, lambda _n, _f: print("SIZE-" + size(), flush=True))
print("READY-" + size(), flush=True)
try:
    while True:
        time.sleep(0.2)
except KeyboardInterrupt:
    print("GOT-SIGINT", flush=True)
    sys.exit(5)
"""


def test_the_guest_terminal_follows_the_window_and_gets_ctrl_c(
    tmp_path: Path, pane: Pane, microvm_ready: None
) -> None:
    env = pane.env
    (tmp_path / "bot-bottle.yaml").write_text(
        "bottles:\n  b:\n"
        f"    agent_provider: {{template: command, command: [python3, -c, {json.dumps(TERMINAL_AGENT)}]}}\n"
        "    workspace: none\n    backend: microvm\nagents:\n  term: {bottle: b}\n"
    )
    trust(env, tmp_path)
    before, after, rc = tmp_path / "before.txt", tmp_path / "after.txt", tmp_path / "rc.txt"
    bot = f"{shlex.quote(sys.executable)} -m bot_bottle"
    pane.tmux("new-session", "-d", "-x", "160", "-y", "50", "-c", str(tmp_path),
              "bash --norc --noprofile")  # fmt: skip
    pane.tmux("send-keys", "-l", f"stty -a > {before}; {bot} run term -y; echo $? > {rc}; "
              f"stty -a > {after}")  # fmt: skip
    pane.tmux("send-keys", "Enter")
    pane.wait("READY-50x160", timeout=BOOT_S)
    pane.tmux("resize-window", "-x", "100", "-y", "30")
    pane.wait("SIZE-30x100")
    pane.tmux("resize-window", "-x", "120", "-y", "40")
    pane.wait("SIZE-40x120")
    pane.tmux("send-keys", "C-c")
    pane.wait("GOT-SIGINT")
    assert wait_for(rc, "\n", timeout=60).strip() == "5", pane.text()
    wait_for(after, "speed")
    modes = {"echo", "icanon", "isig", "-echo", "-icanon", "-isig"}
    assert set(after.read_text().split()) & modes == set(before.read_text().split()) & modes
    assert {"echo", "icanon", "isig"} <= set(after.read_text().split())


# First run: HOME gets a mark, the agent waits. Resumed: it finds the mark.
LIFECYCLE_AGENT = (
    "if [ -e $HOME/mark ]; then echo resumed > /workspace/resumed; fi; "
    "echo x > $HOME/mark; echo up > /workspace/up; exec sleep 300"
)


def _start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "bot_bottle", *args], env=env, cwd=cwd,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip


def test_keep_resume_stop_kill_and_rm(tmp_path: Path, microvm_ready: None) -> None:
    env = base_env(tmp_path)
    ws = tmp_path / "ws"
    ws.mkdir()
    hand_over(ws)
    (tmp_path / "bot-bottle.yaml").write_text(
        "bottles:\n  b:\n"
        f"    agent_provider: {{template: command, command: [sh, -c, {json.dumps(LIFECYCLE_AGENT)}]}}\n"
        "    egress: {routes: []}\n    workspace: {mode: mount, path: ws}\n"
        "    backend: microvm\nagents:\n  a: {bottle: b}\n"
    )
    trust(env, tmp_path)
    launcher = _start(["run", "a", "-y", "--keep"], env, tmp_path)
    try:
        wait_for(ws / "up", "up", timeout=BOOT_S)
        (row,) = bottles(env, tmp_path)
        slug, state = row["slug"], Path(env["BOT_BOTTLE_HOME"]) / "bottles" / row["slug"]
        assert (row["backend"], row["status"]) == ("microvm", "running"), row
        vm = _vm_processes(state)
        assert len(vm) >= 2, vm  # QEMU and virtiofsd (HOME, workspace)
        assert (state / "exec.sock").exists()

        # `stop` from another terminal: the attached run ends with 143, nothing is left.
        r = bb(["stop", slug], env, tmp_path)
        assert r.returncode == 0, r.stderr
        assert launcher.wait(timeout=60) == 143
        assert _gone(vm) == [], "QEMU or virtiofsd outlived the stopped bottle"
        assert not (state / "exec.sock").exists()
        (row,) = bottles(env, tmp_path)
        assert row["status"] in ("stopped", "exited"), row

        # `resume`: HOME (a host dir in the state dir) survived.
        (ws / "up").unlink()
        launcher = _start(["resume", slug, "-y"], env, tmp_path)
        wait_for(ws / "up", "up", timeout=BOOT_S)
        assert (ws / "resumed").read_text() == "resumed\n"
        vm = _vm_processes(state)
        assert len(vm) >= 2, vm

        # The launcher killed outright: QEMU and virtiofsd die with it (pdeathsig).
        os.kill(launcher.pid, signal.SIGKILL)
        launcher.wait()
        assert _gone(vm) == [], "QEMU or virtiofsd outlived the launcher killed outright"

        r = bb(["logs", slug], env, tmp_path)
        assert r.returncode == 0, r.stderr
        r = bb(["rm", slug], env, tmp_path)
        assert r.returncode == 0, r.stderr
        assert bottles(env, tmp_path) == []
        assert not (state / "home").exists() and not (state / "vm").exists()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(launcher.pid, signal.SIGKILL)
        launcher.wait()
