"""The launcher killed with SIGKILL part-way through a launch (issue 14, item 4): once
the egress is up, once the git gate is up, once the sandbox runs. No cleanup runs in
the launcher. The sidecars (own sessions, credentials in their environment) end by
themselves, following the launcher's pid (`sidecars.lifeline`; they ran on until the
next `gc` before); on Docker the bottle's container and volumes stay. `gc`, or the
sweep at the start of the next `run`, finds every leftover (any process still there,
containers, networks, volumes, the state dir and its sockets), removes it, and says
what it removed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from e2e_support import base_env, bb, trust

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration" / "git_gate"))
from git_gate_harness import seed_bare

pytestmark = pytest.mark.e2e


def _working_in(root: Path) -> list[int]:
    """Processes whose cwd is under `root`, or bwrap naming it (what a launch starts)."""
    out = []
    real = os.path.realpath(root)
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cwd = os.readlink(d / "cwd")
            argv = (d / "cmdline").read_bytes()
            if cwd.startswith(real + "/") or (b"bwrap" in argv and real.encode() in argv):
                out.append(int(d.name))
    return out


def _settled(root: Path) -> list[int]:
    """What works in `root` once nothing has ended by itself for a second: a sidecar
    still starting when its launcher died exits on its own when READY meets the closed
    pipe, and gc cannot name what ended before it looked."""
    seen = _working_in(root)
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < 1.0:
        time.sleep(0.1)
        now = [p for p in _working_in(root) if _alive(p)]
        if set(now) != set(seen):
            seen, quiet_since = now, time.monotonic()
    return seen


def _leads_session(pid: int) -> bool:
    try:
        return os.getsid(pid) == pid
    except OSError:
        return False


def _describe(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
    return "(gone)"


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _docker_objects(slug: str) -> list[tuple[str, str]]:
    """(kind, name) of the Docker objects labelled with `slug`."""
    names = []
    for kind, fmt in (("container", "{{.Names}}"), ("network", "{{.Name}}"),
                      ("volume", "{{.Name}}")):  # fmt: skip
        cmd = ["docker", kind, "ls", "--format", fmt, "--filter", f"label=bot-bottle.slug={slug}"]
        if kind == "container":
            cmd.insert(3, "-a")
        r = subprocess.run(cmd, capture_output=True, text=True, check=True)
        names += [(kind, n) for n in r.stdout.split()]
    return names


def _wait(what: str, ready: object, launcher: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while not ready():  # type: ignore[operator]
        assert launcher.poll() is None, f"the launcher ended before {what}"
        assert time.monotonic() < deadline, f"never reached: {what}"
        time.sleep(0.01)


@pytest.mark.parametrize(
    ("point", "cleaner"),
    [("egress", "gc"), ("git-gate", "run"), ("sandbox", "gc")],
)
def test_gc_removes_what_a_killed_launch_left(
    tmp_path: Path, bottle_backend: str, point: str, cleaner: str
) -> None:
    bare = seed_bare(tmp_path / "upstream" / "repo.git")
    marker = f"bb-killed-mid-launch-{os.getpid()}-{time.monotonic_ns()}"
    (tmp_path / "bot-bottle.yaml").write_text(f"""
bottles:
  b:
    agent_provider: {{template: command, command: [sh, -c, 'sleep 300; : {marker}']}}
    git:
      remotes:
        - name: origin
          url: "{bare.as_uri()}"
    workspace: none
    backend: {bottle_backend}
  quick:
    agent_provider: {{template: command, command: ["true"]}}
    workspace: none
    backend: namespace
agents:
  a: {{bottle: b}}
  q: {{bottle: quick}}
""")
    env = base_env(tmp_path)
    trust(env, tmp_path)
    home = Path(env["BOT_BOTTLE_HOME"])
    launcher = subprocess.Popen([sys.executable, "-m", "bot_bottle", "run", "a", "-y"], env=env,
                                cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    slug = ""
    try:

        def sockets(name: str) -> bool:
            return any((home / "bottles").glob(f"*/sockets/{name}.sock"))

        def agent_runs() -> bool:
            for d in Path("/proc").iterdir():
                with contextlib.suppress(OSError):
                    if d.name.isdigit() and marker.encode() in (d / "cmdline").read_bytes():
                        return True
            return False

        ready = {"egress": lambda: sockets("egress"), "git-gate": lambda: sockets("git-gate"),
                 "sandbox": agent_runs}[point]  # fmt: skip
        _wait(point, ready, launcher)
        (state,) = (home / "bottles").iterdir()
        slug = state.name
        started = {p: _describe(p) for p in _working_in(state) if _leads_session(p)}
        assert started, "nothing of the launch runs yet: the test proves nothing"
        launcher.kill()
        launcher.wait()
        # What it started ends with it, without a gc: nothing serves a bottle whose
        # launcher is gone, with the bottle's credentials in its environment.
        killed = time.monotonic()
        while outlived := {p: d for p, d in started.items() if _alive(p)}:
            assert time.monotonic() < killed + 10, f"outlived the launcher: {outlived}"
            time.sleep(0.05)
        print(f"{len(started)} ended {time.monotonic() - killed:.2f} s after the launcher")
        left = _working_in(state)
        settled = _settled(state)
        # The sidecars lead their own sessions; their short-lived children (git at the
        # gate's start) may end by themselves before gc looks, so only leaders are
        # required in what gc names. All must be gone.
        leaders = {p for p in settled if _leads_session(p)}
        described = {p: _describe(p) for p in leaders}
        docker_left = _docker_objects(slug) if bottle_backend == "docker" else []

        # A sidecar that stopped cleanly took its socket along; any left is named.
        sockets_left = sorted(str(p) for p in (state / "sockets").glob("*.sock"))
        if cleaner == "gc":
            r = bb(["gc", "--json"], env, tmp_path)
            assert r.returncode == 0, r.stderr
            said = {(x["kind"], x["name"]) for x in json.loads(r.stdout)}
        else:  # the next `run` cleans up first, and says so
            r = bb(["run", "q", "-y"], env, tmp_path)
            assert r.returncode == 0, r.stderr
            said = {tuple(line.split(" (")[0].split(": ", 1)[1].split(" ", 1))
                    for line in r.stderr.splitlines() if "cleaned up after a killed launch" in line}  # fmt: skip

        # Everything is gone, and everything that went was named.
        deadline = time.monotonic() + 10
        while still := _working_in(state):
            assert time.monotonic() < deadline, f"still running: {still}"
            time.sleep(0.1)
        assert not state.exists(), list(state.rglob("*"))
        named_pids = {int(n.split()[0]) for k, n in said if k == "process"}
        assert leaders <= named_pids, (described, said)
        assert not [p for p in left if _alive(p)], left
        assert ("state", slug) in said, said
        assert {("socket", p) for p in sockets_left} <= said, (sockets_left, said)
        if bottle_backend == "docker":
            assert _docker_objects(slug) == []
            assert set(docker_left) <= said, (docker_left, said)
        # Nothing is left for a second gc.
        again = json.loads(bb(["gc", "--json"], env, tmp_path).stdout)
        assert [x for x in again if x["kind"] != "note"] == [], again
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(launcher.pid, signal.SIGKILL)
        if slug:
            for pid in _working_in(home / "bottles" / slug):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if bottle_backend == "docker":
                subprocess.run(["docker", "rm", "-f", f"bb-{slug}-agent"], capture_output=True,
                               check=False)  # fmt: skip
