"""The git path of a microVM: a guest (uid 1000, no network device) clones and pushes
through `127.0.0.1:9419`, which the forwarder carries over the host channel to a real
`bot-bottle git-gate serve` on a Unix socket. A clean push reaches the upstream; a
push carrying an AWS key is refused by the gate and never arrives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "git_gate"))

from git_gate_harness import git, read_ready, seed_bare, stop_gate

from bot_bottle.backends.microvm import boot
from bot_bottle.backends.microvm.channel import HostChannel
from bot_bottle.backends.microvm.qemu import VmConfig, host_tsc_khz
from bot_bottle.executor import ProcessExecutor
from bot_bottle.images.guest.store import BootFiles
from bot_bottle.sidecars.git_gate.config import gate_remote_url

KEY = "AKIA" + "Q7R2ZK4WXM9PLT3B"

GUEST = f"""
set -u
export GIT_AUTHOR_NAME=agent GIT_AUTHOR_EMAIL=agent@bottle
export GIT_COMMITTER_NAME=agent GIT_COMMITTER_EMAIL=agent@bottle
cd /tmp
git clone -q {gate_remote_url("origin", 9419)} work && cd work
echo clean > clean.txt && git add clean.txt && git commit -qm clean
git push -q origin main && echo "clean push: ok" || echo "clean push: refused"
echo "aws = {KEY}" > leak.txt && git add leak.txt && git commit -qm leak
git push -q origin main 2>/tmp/err && echo "secret push: ok" || echo "secret push: refused"
grep -q REJECTED /tmp/err && echo "gate said: REJECTED"
"""


@pytest.fixture(scope="module")
def pushed(
    boot_files: BootFiles, root_image: os.PathLike[str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[boot.Boot, Path]]:
    d = tmp_path_factory.mktemp("gate-vm")
    os.chmod(d, 0o700)
    bare = seed_bare(d / "up" / "repo.git")
    (d / "gate").mkdir()
    (d / "gate" / "home").mkdir()
    cfg_path = d / "gate" / "gate.json"
    cfg_path.write_text(json.dumps({"remotes": [
        {"name": "origin", "url": str(bare), "allowed_refs": ["main"]}]}))  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot_bottle", "git-gate", "serve", "--config", str(cfg_path),
         "--listen", f"unix:{d}/gate.sock", "--audit-log", str(d / "gate" / "audit.jsonl"),
         "--state", str(d / "gate" / "state")],
        env={"PATH": os.environ["PATH"], "HOME": str(d / "gate" / "home")},
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    channel = None
    try:
        read_ready(proc)
        channel = HostChannel(d / "channel.sock", {9419: d / "gate.sock"})
        cfg = VmConfig("tcg", boot_files.kernel.vmlinuz, boot_files.initramfs,
                       root=Path(root_image), command=("sh", "-c", GUEST),
                       tsc_khz=host_tsc_khz(Path("/proc/cpuinfo").read_text()),
                       channel=channel.path, mux_ports=(9419,), user=1000)  # fmt: skip
        yield boot.run(cfg, ProcessExecutor(), timeout=180, marker="secret push:"), bare
    finally:
        if channel is not None:
            channel.close()
        stop_gate(proc)


def test_clean_push_reaches_the_upstream(pushed: tuple[boot.Boot, Path]) -> None:
    b, bare = pushed
    assert "clean push: ok" in b.output, b.output[-3000:]
    files = git("--git-dir", str(bare), "ls-tree", "--name-only", "main")
    assert "clean.txt" in files.split()


def test_push_with_a_secret_is_refused(pushed: tuple[boot.Boot, Path]) -> None:
    b, bare = pushed
    assert "secret push: refused" in b.output, b.output[-3000:]
    assert "gate said: REJECTED" in b.output  # refused by the gate, not by a dead path
    files = git("--git-dir", str(bare), "ls-tree", "--name-only", "main")
    assert "leak.txt" not in files.split()
