"""`run -y` leaves no process behind (issue 14, item 2): no defunct `bwrap` (a sandbox's
PID-namespace init that outlived its parent, never reaped where the host's pid 1 does not
reap, as in a container), and no sidecar outliving its launcher. The per-user egress
helper is the one process that stays (it idles out).

The run goes through a small watcher that is its subreaper: whatever the run orphans
becomes the watcher's child, found (and named) the moment the run exits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from e2e_support import base_env, bb, trust

pytestmark = pytest.mark.e2e

MANIFEST = """
bottles:
  b:
    agent_provider: {template: command, command: ["true"]}
    workspace: none
    backend: namespace
agents:
  a: {bottle: b}
"""

WATCHER = r"""
import ctypes, json, os, subprocess, sys
from pathlib import Path
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
home = os.environ["BOT_BOTTLE_HOME"]
r = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, capture_output=True, text=True)

def proc(pid):
    try:
        comm, rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        cwd = "" if rest.split()[0] == "Z" else os.readlink(f"/proc/{pid}/cwd")
        return {"pid": pid, "state": rest.split()[0], "comm": comm.split("(", 1)[1],
                "argv": argv, "cwd": cwd}
    except OSError:
        return None

kids = set()
for task in Path("/proc/self/task").iterdir():
    kids.update((task / "children").read_text().split())
def helper(p):  # the zygote itself; the sidecars it forks work in a bottle's dir
    return "egress.zygote" in p["argv"] and "/bottles/" not in p["cwd"]

left = [p for p in map(proc, kids) if p and not helper(p)]
for d in Path("/proc").iterdir():
    if d.name.isdigit() and d.name not in kids and (p := proc(d.name)):
        if p["cwd"].startswith(home) and not helper(p):
            left.append(p)
print(json.dumps({"rc": r.returncode, "left": left, "stderr": r.stderr}))
"""


def run_watched(env: dict[str, str], cwd: Path) -> dict[str, object]:
    r = subprocess.run(
        [sys.executable, "-c", WATCHER, sys.executable, "-m", "bot_bottle", "run", "a", "-y"],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    out: dict[str, object] = json.loads(r.stdout)
    return out


@pytest.mark.parametrize("helper", ["on", "off"])
def test_a_run_leaves_no_process_behind(tmp_path: Path, bwrap_ok: None, helper: str) -> None:
    (tmp_path / "bot-bottle.yaml").write_text(MANIFEST)
    env = {**base_env(tmp_path), "BOT_BOTTLE_EGRESS_HELPER": helper}
    trust(env, tmp_path)
    try:
        for _ in range(2):  # the first run starts the helper, the second reuses it
            seen = run_watched(env, tmp_path)
            assert seen["rc"] == 0, seen
            assert seen["left"] == [], seen["left"]
            # Without a terminal the plan is still shown, as plain text.
            err = str(seen["stderr"])
            assert "egress routes\n  host" in err and "(none: no network)" in err, err
    finally:
        bb(["egress", "warm", "--stop"], env, tmp_path)


def test_a_microvm_run_leaves_no_process_behind(tmp_path: Path, microvm_ready: None) -> None:
    """QEMU, virtiofsd and the sidecars of a microVM bottle all end with its run."""
    (tmp_path / "bot-bottle.yaml").write_text(MANIFEST.replace("namespace", "microvm"))
    env = {**base_env(tmp_path), "BOT_BOTTLE_EGRESS_HELPER": "off"}
    trust(env, tmp_path)
    seen = run_watched(env, tmp_path)
    assert seen["rc"] == 0, seen
    assert seen["left"] == [], seen["left"]
