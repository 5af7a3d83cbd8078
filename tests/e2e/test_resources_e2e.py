"""`resources` are enforced, never silently ignored, in real bottles through `bot-bottle run`.

On the namespace backend a bottle runs in a cgroup of its own: a command that wants
more memory than `memory` is killed, and CPU time over a fixed wall time stays near
`cpus` however many processes spin. On Docker, a value the engine refuses (more CPUs
than the host has) is reported against the manifest field, not as a traceback.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from e2e_support import base_env, bb, check_bwrap, hand_over, need, trust

from bot_bottle.backends.namespace import cgroup

pytestmark = pytest.mark.e2e

HUNGRY = r"""
import json
chunks = []
try:
    for _ in range(32):  # 256 MiB, every page touched
        chunks.append(bytearray(8 * 1024 * 1024))
        for i in range(0, len(chunks[-1]), 4096):
            chunks[-1][i] = 1
    result = {"allocated_mib": 8 * len(chunks)}
except MemoryError:
    result = {"memory_error": True}
open("/workspace/hungry.json", "w").write(json.dumps(result))
"""

# Two processes spin for WALL seconds; the children's CPU time is what the quota allowed.
SPIN = r"""
import json, os, resource, time
WALL = 2.0
pids = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        end = time.monotonic() + WALL
        while time.monotonic() < end:
            pass
        os._exit(0)
    pids.append(pid)
for pid in pids:
    os.waitpid(pid, 0)
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
def read(path):
    try:
        return open(path).read().split()
    except OSError:
        return None
v2, v1 = read("/sys/fs/cgroup/cpu.max"), read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
quota = int(v2[0]) / int(v2[1]) if v2 else int(v1[0]) / 100000 if v1 else None
memory = read("/sys/fs/cgroup/memory.max") or read("/sys/fs/cgroup/memory/memory.limit_in_bytes")
pids = read("/sys/fs/cgroup/pids.max") or read("/sys/fs/cgroup/pids/pids.max")
def lift():  # the agent tries to lift its own limit
    for path in ("/sys/fs/cgroup/cpu.max", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"):
        try:
            with open(path, "r+") as f:  # the kernel's file, never a new one
                f.write("max" if path.endswith("max") else "-1")
            return "lifted " + path
        except OSError as e:
            last = type(e).__name__
    return last
open("/workspace/spin.json", "w").write(json.dumps({
    "cpu": ru.ru_utime + ru.ru_stime, "quota": quota,
    "memory": int(memory[0]) if memory else None, "pids": pids[0] if pids else None,
    "lift": lift()}))
"""


def _bottle(
    tmp_path: Path, backend: str, script: str, resources: str
) -> tuple[dict[str, str], Path]:
    env = base_env(tmp_path)
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "probe.py").write_text(script)
    (tmp_path / "bot-bottle.yaml").write_text(
        f"""
bottles:
  b:
    agent_provider:
      template: command
      command: [python3, /workspace/probe.py]
    workspace: {{mode: mount, path: ws}}
    backend: {backend}
    resources: {resources}
agents:
  probe: {{bottle: b}}
"""
    )
    hand_over(ws)
    trust(env, tmp_path)
    return env, ws


def check_cgroups() -> None:
    """This host lets bot-bottle make a bottle's cgroup (root here; elsewhere the
    refusal is what the unit tests show)."""
    check_bwrap()
    found = cgroup.plan("probe", cgroup.Limits(cpus=0.25, memory=64 * 1024**2))
    need(not isinstance(found, str), f"no cgroup for namespace limits here: {found}")


def test_namespace_memory_limit_stops_a_hungry_command(tmp_path: Path) -> None:
    check_cgroups()
    env, ws = _bottle(tmp_path, "namespace", HUNGRY, "{memory: 64m}")
    r = bb(["run", "probe", "-y"], env, tmp_path, timeout=180)
    out = ws / "hungry.json"
    result = json.loads(out.read_text()) if out.exists() else {"killed": r.returncode}
    # Killed by the OOM killer (no file, exit 137), or refused the memory: never 256 MiB.
    assert "allocated_mib" not in result, (result, r.stderr[-2000:])
    assert r.returncode != 0 or result.get("memory_error"), (result, r.stderr[-2000:])
    assert "Traceback" not in r.stderr


def test_namespace_cpus_caps_cpu_time(tmp_path: Path) -> None:
    check_cgroups()
    env, ws = _bottle(tmp_path, "namespace", SPIN, "{cpus: 0.25, memory: 256m}")
    r = bb(["run", "probe", "-y"], env, tmp_path, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    spin = json.loads((ws / "spin.json").read_text())
    # The bottle sees its own cgroup's quota, as in a container (runtimes size by it).
    assert spin["quota"] == 0.25, spin
    assert spin["memory"] == 256 * 1024**2 and spin["pids"] == "4096", spin
    assert not spin["lift"].startswith("lifted"), spin  # read-only to the agent
    # 2 s of wall time at a quarter CPU is 0.5 s; unlimited, two spinners take up to 4 s.
    assert spin["cpu"] < 1.0, spin


def test_docker_cpus_above_the_host_names_the_field(tmp_path: Path, docker_ready: None) -> None:
    too_many = (os.cpu_count() or 1) + 1
    env, _ws = _bottle(tmp_path, "docker", "print('never')", f"{{cpus: {too_many}}}")
    r = bb(["run", "probe", "-y"], env, tmp_path, timeout=300)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    assert "resources.cpus" in r.stderr and "Range of CPUs" in r.stderr, r.stderr[-2000:]


def test_namespace_refuses_a_limit_it_cannot_enforce_naming_the_field(tmp_path: Path) -> None:
    check_bwrap()
    host = os.cpu_count() or 1
    env, ws = _bottle(tmp_path, "namespace", "open('/workspace/ran', 'w')", f"{{cpus: {host + 1}}}")
    r = bb(["run", "probe", "-y"], env, tmp_path, timeout=120)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert f"resources.cpus: {host + 1} is more than this host's {host} CPUs" in r.stderr
    assert "Traceback" not in r.stderr and not (ws / "ran").exists()
