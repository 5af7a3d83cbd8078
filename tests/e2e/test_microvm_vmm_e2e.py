"""The microVM's host processes hold as little as they can: QEMU (the device emulation a
guest would attack first) runs as a uid of its own with no capabilities, no other
groups, no-new-privs and its own seccomp sandbox, and neither QEMU nor virtiofsd
outlives a launcher killed outright (SIGKILL: no cleanup runs)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from e2e_support import base_env, trust

from bot_bottle.backends.microvm.qemu import VMM

pytestmark = pytest.mark.e2e


def _status(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def _children(parent: int) -> dict[int, str]:
    found = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (d / "stat").read_text()
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            if ppid == parent:
                found[int(d.name)] = comm
    return found


def _wait_for(what: str, check, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_vmm_confined_and_gone_with_its_launcher(tmp_path: Path, microvm_ready: None) -> None:
    env = base_env(tmp_path)
    (tmp_path / "bot-bottle.yaml").write_text(
        "bottles:\n  b:\n"
        "    agent_provider: {template: command, command: [sh, -c, 'touch $HOME/.up; sleep 300']}\n"
        "    workspace: none\n    backend: microvm\n"
        "agents:\n  a: {bottle: b}\n"
    )
    trust(env, tmp_path)
    launcher = subprocess.Popen([sys.executable, "-m", "bot_bottle", "run", "a", "-y"], env=env,
                                cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)  # fmt: skip
    try:
        bottles = Path(env["BOT_BOTTLE_HOME"]) / "bottles"
        _wait_for("the agent to start", lambda: list(bottles.glob("*/home/.up")), 120)
        kids = _children(launcher.pid)
        qemu = [p for p, comm in kids.items() if comm.startswith("qemu-system")]
        fsd = [p for p, comm in kids.items() if comm == "virtiofsd"]
        assert len(qemu) == 1 and len(fsd) == 1, kids  # one share: HOME (no workspace)
        st = _status(qemu[0])
        assert st["Uid"].split() == [str(VMM.uid)] * 4, st["Uid"]
        assert st["Gid"].split() == [str(VMM.gid)] * 4, st["Gid"]
        assert st["Groups"] == ""
        assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0
        assert int(st["CapBnd"], 16) == 0
        assert st["NoNewPrivs"] == "1"
        assert st["Seccomp"] == "2"  # QEMU's -sandbox
    except BaseException:
        launcher.kill()
        raise
    watched = [*qemu, *fsd, *(p for f in fsd for p in _children(f))]
    os.kill(launcher.pid, signal.SIGKILL)
    launcher.wait()
    _wait_for("QEMU and virtiofsd to die with the launcher",
              lambda: not [p for p in watched if Path(f"/proc/{p}").exists()
                           and "(Z)" not in Path(f"/proc/{p}/stat").read_text()], 15)  # fmt: skip
    # What a killed launcher leaves, the next `gc` collects (as on every backend).
    subprocess.run([sys.executable, "-m", "bot_bottle", "gc"], env=env, cwd=tmp_path,
                   capture_output=True, check=False, timeout=60)  # fmt: skip
