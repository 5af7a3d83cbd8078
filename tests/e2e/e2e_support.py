"""Helpers for the e2e tests (agent CLI lookup, bot-bottle runner, secret grep)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot_bottle.images.guest.store import cache_dir as guest_cache_dir
from bot_bottle.state.store import home_dir

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(ok: bool, why: str) -> None:
    if ok:
        return
    if CI:
        pytest.fail(f"CI=true and {why}", pytrace=False)
    pytest.skip(why)


def real_agents_dir() -> Path:
    env = os.environ.get("BOT_BOTTLE_AGENTS")
    return Path(env) if env else home_dir(os.environ) / "agents"


def check_bwrap() -> None:
    bwrap = shutil.which("bwrap")
    need(bwrap is not None, "bubblewrap is not installed")
    r = subprocess.run([bwrap or "bwrap", "--unshare-user", "--unshare-net", "--ro-bind", "/",
                        "/", "true"], capture_output=True, check=False)  # fmt: skip
    need(r.returncode == 0, f"bwrap cannot create namespaces: {r.stderr.decode().strip()}")


def agent_cli(name: str) -> Path:
    path = real_agents_dir() / "bin" / name
    need(path.exists(), f"{name} CLI not installed at {path} (`bot-bottle agents install {name}`)")
    return path


def wrapped_agents(tmp: Path, name: str, real: Path) -> Path:
    """A hard-linked copy of the agents prefix whose `bin/NAME` first dumps what the
    agent can see (env, HOME, workspace) to the workspace, then execs the real CLI."""
    prefix = tmp / "agents"
    prefix.mkdir()
    src = real_agents_dir()
    r = subprocess.run(["cp", "-al", str(src / "lib"), str(prefix / "lib")], check=False,
                       capture_output=True)  # fmt: skip
    if r.returncode != 0:  # another filesystem: hard links impossible, copy
        shutil.copytree(src / "lib", prefix / "lib", symlinks=True, dirs_exist_ok=True)
    (prefix / "bin").mkdir()
    target = os.path.realpath(real)
    inside = "/opt/bot-bottle/agents/" + os.path.relpath(target, src)
    script = f"""#!/bin/sh
{{ echo "== env"; env; echo "== home"; find "$HOME" -type f ! -name ca-bundle.pem -print \
-exec cat {{}} \\; ; echo "== workspace"; find . -type f ! -name .bottle-dump -print \
-exec cat {{}} \\; ; }} > /workspace/.bottle-dump 2>&1
exec {inside} "$@"
"""
    (prefix / "bin" / name).write_text(script)
    (prefix / "bin" / name).chmod(0o755)
    return prefix


def bb(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120
       ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run([sys.executable, "-m", "bot_bottle", *args], env=env, cwd=cwd,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip


def trust(env: dict[str, str], cwd: Path, *args: str) -> None:
    """Approve the manifest in `cwd` (or `-f FILE` in args) as an operator would before
    an unattended `run -y` (which refuses an unapproved configuration)."""
    r = bb(["trust", "--yes", *args], env, cwd)
    assert r.returncode == 0, r.stderr


def bottles(env: dict[str, str], cwd: Path) -> list[dict[str, Any]]:
    """The bottles `bot-bottle ls --json` reports (each has `slug` and `status`)."""
    r = bb(["ls", "--json"], env, cwd)
    assert r.returncode == 0, r.stderr
    out: list[dict[str, Any]] = json.loads(r.stdout)
    return out


def wait_for(path: Path, text: str, timeout: float = 60) -> str:
    """Poll until `path` holds `text` (the bottle writes it); return the content."""
    end = time.monotonic() + timeout
    while True:
        content = path.read_text() if path.exists() else ""
        if text in content:
            return content
        assert time.monotonic() < end, f"{path} never held {text!r}: {content!r}"
        time.sleep(0.05)


def base_env(tmp: Path) -> dict[str, str]:
    host_home = tmp / "host-home"
    host_home.mkdir(exist_ok=True)
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(host_home),
            "BOT_BOTTLE_HOME": str(tmp / "bb-home"), "LANG": "C.UTF-8",
            # Each test has its own state dir, so its own egress helper: let it go soon
            # (the e2e conftest also stops it when the test ends).
            "BOT_BOTTLE_EGRESS_HELPER_IDLE": "60",
            # The microVM guest (kernel, initramfs, root images) holds nothing of any
            # bottle's: every test shares the one this user's state home caches.
            "BOT_BOTTLE_GUEST_CACHE": str(guest_cache_dir())}  # fmt: skip


def grep_tree(root: Path, needle: str, skip: tuple[Path, ...] = ()) -> list[str]:
    hits = []
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            if p in skip or p.is_symlink() or "node_modules" in p.parts:
                continue
            try:
                if needle.encode() in p.read_bytes():
                    hits.append(str(p))
            except OSError:
                continue
    return hits


# What a microVM bottle writes of its own (`backends/microvm`): the serial console's log,
# the provision disk (the agent's environment and command) and each virtiofsd's log.
MICROVM_FILES = ("console.log", "provision.tar", "virtiofsd-home.log", "virtiofsd-workspace.log")


def assert_not_written(root: Path, needle: str, backend: str) -> None:
    """No file under `root` holds `needle`. On the microVM backend the bottle's own files
    must be among those searched (the run kept its bottle), so that a secret reaching the
    guest's console or provision disk cannot pass unseen."""
    if backend == "microvm":
        vms = list(root.glob("**/bottles/*/vm"))
        assert vms, f"no microVM state under {root}: run with --keep"
        for vm in vms:
            missing = [f for f in MICROVM_FILES if not (vm / f).is_file()]
            assert missing == [], f"{vm} lacks {missing}"
    hits = grep_tree(root, needle)
    assert hits == [], f"written to {hits}"


# Who owns the test workspaces when the tests run as root: bot-bottle never runs an
# agent as root, and refuses a root-owned `mount` workspace under a root launcher.
AGENT_TEST_UID = 1000


def agent_workspace(path: Path) -> Path:
    """A directory for a `mount` workspace, as a user would have it: theirs."""
    path.mkdir(parents=True, exist_ok=True)
    hand_over(path)
    return path


def hand_over(path: Path) -> None:
    """Give `path` and everything in it to the unprivileged workspace owner (when the
    tests run as root; otherwise it is the test user's already)."""
    if os.geteuid() != 0:
        return
    for p in [path, *path.rglob("*")]:
        os.chown(p, AGENT_TEST_UID, AGENT_TEST_UID, follow_symlinks=False)
