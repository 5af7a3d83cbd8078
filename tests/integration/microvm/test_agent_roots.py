"""The agent images as guest roots, booted for real: Node and each agent CLI start
under the guest's own kernel as the agent (uid 1000, HOME on its writable overlay), and
every root carries what the microVM backend runs the agent with (setsid with `-c` for
a controlling terminal, setpriv, stty, python3 for the channel forwarder, /home/agent
and /workspace, where HOME and the workspace are mounted).

Under TCG (these machines) Node starts ~30x slower than natively: the deadlines are
generous, and each test prints its boot-to-exit time (`pytest -s`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bot_bottle.backends.microvm import boot
from bot_bottle.backends.microvm.qemu import VmConfig, host_tsc_khz
from bot_bottle.executor import ProcessExecutor
from bot_bottle.images.guest.store import BootFiles

DEADLINE = 180.0
AGENT_UID = 1000

# What the backend needs in every root, checked as the agent would meet it. By path:
# the guest's shell may be busybox, whose `command -v` answers with its own applets.
TOOLS = r"""
now() { /usr/bin/date +%s.%N; }  # busybox date has no %N
echo "bb-check user: $(id -u):$(id -g)"
for t in /usr/bin/setsid /usr/bin/setpriv /usr/bin/stty /usr/bin/python3; do
  if [ -f $t ] && [ -x $t ]; then echo "bb-check tool $t: yes"; fi
done
if /usr/bin/setsid --help 2>&1 | grep -q -- '--ctty'; then echo "bb-check setsid-ctty: yes"; fi
if [ -d /home/agent ] && [ "$HOME" = /home/agent ] && touch "$HOME/.probe"; then
  echo "bb-check home: writable"
fi
if [ -d /workspace ]; then echo "bb-check workspace: yes"; fi
"""

# `node -e`, then the CLI's version, each timed inside the guest.
CLI = r"""
t=$(now); node -e 'process.stdout.write(`node says ${6 * 7} ${process.version}\n`)'
echo "bb-time node: $(echo "$(now) $t" | awk '{printf "%.2f", $1 - $2}')"
t=$(now); {cli} --version
echo "bb-cli-status: $?"
echo "bb-time {cli}: $(echo "$(now) $t" | awk '{printf "%.2f", $1 - $2}')"
"""


def _boot(files: BootFiles, root: Path, script: str) -> boot.Boot:
    cfg = VmConfig("tcg", files.kernel.vmlinuz, files.initramfs, root=root,
                   command=("sh", "-c", script), user=AGENT_UID,
                   tsc_khz=host_tsc_khz(Path("/proc/cpuinfo").read_text()))  # fmt: skip
    return boot.run(cfg, ProcessExecutor(), timeout=DEADLINE, marker="bb-check user:")


def _lines(b: boot.Boot, prefix: str) -> dict[str, str]:
    out = {}
    for line in b.output.splitlines():
        if line.startswith(prefix):
            key, _, value = line.removeprefix(prefix).partition(":")
            out[key.strip()] = value.strip()
    return out


def _assert_tools(b: boot.Boot) -> None:
    checks = _lines(b, "bb-check ")
    assert checks.get("user") == f"{AGENT_UID}:{AGENT_UID}", b.output[-3000:]
    for tool in ("setsid", "setpriv", "stty", "python3"):
        assert checks.get(f"tool /usr/bin/{tool}") == "yes", (tool, b.output[-3000:])
    assert checks.get("setsid-ctty") == "yes", b.output[-3000:]
    assert checks.get("home") == "writable", b.output[-3000:]
    assert checks.get("workspace") == "yes", b.output[-3000:]  # a share's mount point


def _report(role: str, b: boot.Boot) -> None:
    times = _lines(b, "bb-time ")
    print(f"\n[{role} root, TCG] boot to exit {b.total_s:.1f} s; to the first line "
          f"{b.marker_s or 0:.1f} s; in the guest: " +
          ", ".join(f"{k} {v} s" for k, v in times.items()))  # fmt: skip


def test_general_root_has_what_the_backend_runs_the_agent_with(
    boot_files: BootFiles, root_image: os.PathLike[str]
) -> None:
    b = _boot(boot_files, Path(root_image), TOOLS)
    assert not b.timed_out and b.guest_exit == 0, b.output[-3000:]
    _assert_tools(b)
    _report("general", b)


@pytest.mark.parametrize(("role", "cli", "version"),
                         [("claude", "claude", "(Claude Code)"), ("codex", "codex", "codex-cli")])  # fmt: skip
def test_node_and_the_agent_cli_run_in_the_guest(
    boot_files: BootFiles, agent_root: Callable[[str], Path], role: str, cli: str, version: str
) -> None:
    b = _boot(boot_files, agent_root(role), TOOLS + CLI.replace("{cli}", cli))
    assert not b.timed_out, f"no exit within {DEADLINE} s: {b.output[-3000:]}"
    _assert_tools(b)
    assert "node says 42 v" in b.output, b.output[-3000:]
    assert _lines(b, "bb-").get("cli-status") == "0", b.output[-3000:]
    assert any(version in line for line in b.output.splitlines()), b.output[-3000:]
    assert b.guest_exit == 0
    _report(role, b)


def test_images_guest_lists_the_agent_roots(agent_root: Callable[[str], Path]) -> None:
    """`bot-bottle images guest --image` lists each root the fixture made (same cache)
    as up to date, with its size, and builds nothing."""
    made = {role: agent_root(role) for role in ("claude", "codex")}
    r = subprocess.run([sys.executable, "-m", "bot_bottle", "images", "guest", "--image",
                        "claude", "--image", "codex", "--json"],
                       capture_output=True, text=True, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    roots = [row for row in json.loads(r.stdout) if row["name"].startswith("root")]
    assert [(row["path"], row["built"]) for row in roots] == [
        (str(made["claude"]), False),
        (str(made["codex"]), False),
    ]
    assert "agent-claude" in roots[0]["name"] and "agent-codex" in roots[1]["name"]
    assert all(row["size"] == Path(row["path"]).stat().st_size for row in roots)
