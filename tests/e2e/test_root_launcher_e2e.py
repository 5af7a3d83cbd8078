"""No privilege leaks through files when the launcher runs as root, on every backend.

The agent tries to leave behind what another host user could use: a copy of a shell
made setuid/setgid (by chmod, by `install -m`, by creating the file with the bits), a
setgid directory, device nodes, and, by running as whoever it is, files owned by root.
After the run no file in the workspace may be setuid/setgid, a device, or owned by
root unless it was before; the agent must still have been able to work there.
A root-owned workspace is refused before anything starts (bot-bottle never runs an
agent as root).
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from e2e_support import AGENT_TEST_UID, base_env, bb, bottles, need, trust

pytestmark = pytest.mark.e2e

ATTEMPTS = r"""
cd /workspace
id > id.txt
echo made by the agent > plain.txt
cp /bin/sh sh-chmod; chmod u+s,g+s sh-chmod; chmod 6755 sh-chmod
install -m 4755 /bin/sh sh-install
mkdir dir-sgid; chmod g+s dir-sgid
mknod cdev c 1 3; mknod bdev b 7 0; mknod fifo p
python3 - <<'PY'
import os
for name, call in {
    "open": lambda: os.close(os.open("py-open", os.O_CREAT | os.O_WRONLY, 0o6755)),
    "chmod": lambda: os.chmod("plain.txt", 0o4755),
    "mkdir": lambda: os.mkdir("py-dir", 0o2755),
    "mknod": lambda: os.mknod("py-null", 0o600 | 0o020000, os.makedev(1, 3)),
}.items():
    try:
        call(); print(name, "done")
    except OSError as e:
        print(name, "refused", e.errno)
PY
ls -ln /workspace
"""


def _root_launcher() -> None:
    need(os.geteuid() == 0, "this test is about a launcher running as root")


def _scan(ws: Path) -> dict[str, str]:
    """Every file in `ws` carrying more than its owner's plain rights, or root's."""
    bad = {}
    for p in [ws, *ws.rglob("*")]:
        st = os.lstat(p)
        why = []
        if st.st_mode & (stat.S_ISUID | stat.S_ISGID):
            why.append(f"mode {stat.filemode(st.st_mode)}")
        if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            why.append("device")
        if st.st_uid == 0 or st.st_gid == 0:
            why.append(f"owned {st.st_uid}:{st.st_gid}")
        if why:
            bad[str(p.relative_to(ws))] = ", ".join(why)
    return bad


def _manifest(tmp_path: Path, backend: str) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "attempts.sh").write_text(ATTEMPTS)  # root's, from before the run
    (tmp_path / "bot-bottle.yaml").write_text(
        "bottles:\n  b:\n"
        "    agent_provider: {template: command, command: [sh, /workspace/attempts.sh]}\n"
        f"    workspace: {{mode: mount, path: ws}}\n    backend: {backend}\n"
        "agents:\n  a: {bottle: b}\n"
    )
    return ws


def test_agent_leaves_nothing_privileged(tmp_path: Path, any_backend: str) -> None:
    # On microvm there is no seccomp filter in the guest: the agent may ask for set-id
    # bits on its own files, and virtiofsd (root on the host) refuses them (`confine`).
    bottle_backend = any_backend
    _root_launcher()
    env = base_env(tmp_path)
    ws = _manifest(tmp_path, bottle_backend)
    os.chown(ws, AGENT_TEST_UID, AGENT_TEST_UID)  # the user the workspace belongs to
    before = _scan(ws)
    assert before == {"attempts.sh": "owned 0:0"}
    trust(env, tmp_path)
    r = bb(["run", "a", "-y"], env, tmp_path, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    # The agent did work here: its files exist, owned by the workspace's owner.
    assert (ws / "plain.txt").read_text() == "made by the agent\n", r.stdout + r.stderr
    assert os.stat(ws / "plain.txt").st_uid == AGENT_TEST_UID
    assert _scan(ws) == before, r.stdout + r.stderr


def test_root_owned_workspace_is_refused(tmp_path: Path, bottle_backend: str) -> None:
    _root_launcher()
    env = base_env(tmp_path)
    ws = _manifest(tmp_path, bottle_backend)
    trust(env, tmp_path)
    r = bb(["run", "a", "-y"], env, tmp_path, timeout=300)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "owned by root" in r.stderr and "chown" in r.stderr, r.stderr
    assert sorted(os.listdir(ws)) == ["attempts.sh"], r.stdout + r.stderr
    assert bottles(env, tmp_path) == []


def test_sandbox_dies_with_a_killed_root_launcher(tmp_path: Path, bwrap_ok: None) -> None:
    """The privilege drop must not cut the sandbox loose from its launcher: killed
    outright (no cleanup runs), the launcher takes every agent process with it."""
    _root_launcher()
    env = base_env(tmp_path)
    token = f"bb-e2e-{os.getpid()}-{time.monotonic_ns()}"
    (tmp_path / "bot-bottle.yaml").write_text(
        "bottles:\n  b:\n"
        f"    agent_provider: {{template: command, command: [sh, -c, 'sleep 300; : {token}']}}\n"
        "    workspace: none\n    backend: namespace\n"
        "agents:\n  a: {bottle: b}\n"
    )
    trust(env, tmp_path)
    launcher = subprocess.Popen([sys.executable, "-m", "bot_bottle", "run", "a", "-y"], env=env,
                                cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (agent := _processes_with(token, "sh")):
            assert time.monotonic() < deadline and launcher.poll() is None, "agent never ran"
            time.sleep(0.05)
        assert 0 not in agent.values(), agent  # and not as root
        launcher.kill()
        launcher.wait()
        deadline = time.monotonic() + 5
        while left := _processes_with(token):
            assert time.monotonic() < deadline, f"outlived the launcher: {left}"
            time.sleep(0.05)
    finally:
        for pid in _processes_with(token):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for b in bottles(env, tmp_path):
            bb(["rm", b["slug"]], env, tmp_path)


def _processes_with(token: str, program: str = "") -> dict[int, int]:
    """pid -> uid of every process whose command line holds `token` (and whose
    program is `program`, when given)."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
            if token.encode() in b"\0".join(argv) and argv[0].endswith(program.encode()):
                out[int(d.name)] = d.stat().st_uid
        except OSError:
            continue
    return out
