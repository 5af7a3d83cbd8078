"""One workspace, one writer: a second bottle on a mounted workspace that a running
bottle holds is refused, naming the holder and the flag that overrides; the flag runs
it; and a holder killed outright (SIGKILL: no cleanup runs) leaves nothing locked."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from e2e_support import base_env, bb, bottles, hand_over, trust

pytestmark = pytest.mark.e2e

# The first run sleeps holding the workspace; any later run only leaves its mark.
AGENT = (
    "if [ -e /workspace/started ]; then echo later >> /workspace/later; exit 0; fi; "
    "touch /workspace/started; exec sleep 300"
)


def _manifest(tmp_path: Path, backend: str, mode: str = "mount") -> None:
    ws = "{mode: mount, path: ws}" if mode == "mount" else "{mode: copy, path: ws}"
    (tmp_path / "bot-bottle.yaml").write_text(
        "bottles:\n  b:\n"
        f"    agent_provider: {{template: command, command: [sh, -c, '{AGENT}']}}\n"
        f"    workspace: {ws}\n    backend: {backend}\n"
        "agents:\n  a: {bottle: b}\n"
    )


def _start_holder(env: dict[str, str], tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    launcher = subprocess.Popen([sys.executable, "-m", "bot_bottle", "run", "a", "-y"], env=env,
                                cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while True:
        running = [b["slug"] for b in bottles(env, tmp_path) if b["status"] == "running"]
        if running and (tmp_path / "ws" / "started").exists():
            return launcher, running[0]
        assert time.monotonic() < deadline and launcher.poll() is None, "the holder never ran"
        time.sleep(0.1)


def _cleanup(env: dict[str, str], tmp_path: Path, launcher: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(launcher.pid, signal.SIGKILL)
    launcher.wait()
    for b in bottles(env, tmp_path):
        bb(["rm", b["slug"]], env, tmp_path)


def test_second_writer_is_refused_until_the_holder_dies(tmp_path: Path, bottle_backend: str
                                                        ) -> None:  # fmt: skip
    env = base_env(tmp_path)
    (tmp_path / "ws").mkdir()
    hand_over(tmp_path / "ws")
    _manifest(tmp_path, bottle_backend)
    trust(env, tmp_path)
    launcher, holder = _start_holder(env, tmp_path)
    try:
        second = bb(["run", "a", "-y"], env, tmp_path, timeout=180)
        assert second.returncode == 2, second.stdout + second.stderr
        assert f"in use by bottle {holder}" in second.stderr, second.stderr
        assert "--share-workspace" in second.stderr, second.stderr
        assert not (tmp_path / "ws" / "later").exists(), "the refused run started its agent"
        # Nothing was created for it: the holder is the only bottle.
        assert [b["slug"] for b in bottles(env, tmp_path)] == [holder]

        shared = bb(["run", "a", "-y", "--share-workspace"], env, tmp_path, timeout=180)
        assert shared.returncode == 0, shared.stdout + shared.stderr
        assert (tmp_path / "ws" / "later").read_text() == "later\n"

        # Killed outright, the holder runs no cleanup; its lock goes with it anyway (and
        # the sidecars it leaves running do not hold it).
        os.kill(launcher.pid, signal.SIGKILL)
        launcher.wait()
        after = bb(["run", "a", "-y"], env, tmp_path, timeout=180)
        assert after.returncode == 0, after.stdout + after.stderr
        assert (tmp_path / "ws" / "later").read_text() == "later\nlater\n"
    finally:
        _cleanup(env, tmp_path, launcher)


def test_copy_workspaces_are_not_locked(tmp_path: Path, bwrap_ok: None) -> None:
    """A copy is the bottle's own: two bottles from one directory never share files."""
    env = base_env(tmp_path)
    (tmp_path / "ws").mkdir()
    _manifest(tmp_path, "namespace", mode="copy")
    trust(env, tmp_path)
    launcher = subprocess.Popen([sys.executable, "-m", "bot_bottle", "run", "a", "-y"], env=env,
                                cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not [b for b in bottles(env, tmp_path) if b["status"] == "running"]:
            assert time.monotonic() < deadline and launcher.poll() is None, "never ran"
            time.sleep(0.1)
        # Its own copy has no `started` either, so this one sleeps too: it must get that far.
        second = subprocess.Popen([sys.executable, "-m", "bot_bottle", "run", "a", "-y"],
                                  env=env, cwd=tmp_path, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  start_new_session=True)  # fmt: skip
        try:
            while len([b for b in bottles(env, tmp_path) if b["status"] == "running"]) < 2:
                if second.poll() is not None:
                    pytest.fail(
                        f"second copy bottle refused: {second.stderr.read()!r}"
                        if second.stderr
                        else "second copy bottle ended"
                    )
                assert time.monotonic() < deadline, "the second copy bottle never ran"
                time.sleep(0.1)
        finally:
            _cleanup(env, tmp_path, second)
    finally:
        _cleanup(env, tmp_path, launcher)
