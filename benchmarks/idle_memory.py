"""Memory of an idle bottle on each backend: the resident set (RSS) and proportional
set (PSS: shared pages divided among their users) of every host process a bottle
brings, measured once the agent is idle (it printed a line and sleeps).

Each process is counted once, in one group:
- launcher: the `bot-bottle run` process itself;
- sidecars: the ones the launcher recorded (the egress sidecar, forked by the per-user
  egress helper);
- egress helper: that helper (one per user, shared by every bottle: not per bottle);
- qemu, virtiofsd (microvm): the VMM holding the guest's RAM, and one daemon per share;
- sandbox: the rest of the launcher's descendants (bwrap and the agent; the docker CLI).
- container, containerd shim (docker): the container's processes and its shim, which
  run under the engine (dockerd and containerd themselves are not counted).

The bottle has one egress route (so its sidecar starts) and sends nothing. `--microvm`
needs root here (virtiofsd); the guest is taken from this user's cache.

Run: python benchmarks/idle_memory.py [--backend namespace --backend microvm] [-n 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MANIFEST = """
bottles:
  b:
    agent_provider: {{template: command, command: [sh, -c, "echo idle; exec sleep 600"]}}
    egress:
      routes:
        - host: api.example.test
    workspace: none
    backend: {backend}
agents:
  idle: {{bottle: b}}
"""


def memory(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of `pid` in MiB; zeros once it is gone."""
    rss = pss = 0.0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("Pss:"):
                pss = int(line.split()[1]) / 1024
    except OSError:
        pass
    return rss, pss


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            kids = [int(k) for t in Path(f"/proc/{p}/task").iterdir()
                    for k in (t / "children").read_text().split()]  # fmt: skip
        except OSError:
            continue
        out += kids
        todo += kids
    return out


def command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def group_of(cmd: str) -> str:
    exe = cmd.split(" ", 1)[0]
    if "egress.zygote" in cmd:
        return "egress helper (per user)"
    if "qemu-system" in exe or ("setpriv" in exe and "qemu-system" in cmd):
        return "qemu"
    if "virtiofsd" in cmd:
        return "virtiofsd"
    return "sandbox"


def container_groups(slug: str) -> dict[str, list[int]]:
    """A Docker bottle's container: its processes and its containerd shim (both run
    under the engine, not the launcher)."""
    ids = subprocess.run(["docker", "ps", "-q", "--filter", f"label=bot-bottle.slug={slug}"],
                         capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    out: dict[str, list[int]] = {"container": [], "containerd shim": []}
    for cid in ids:
        pid = int(subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", cid],
                                 capture_output=True, text=True, check=True).stdout)  # fmt: skip
        out["container"] += [pid, *descendants(pid)]
        shim = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        out["containerd shim"].append(shim)
    return out


def measure(backend: str, tmp: Path, env: dict[str, str]) -> dict[str, tuple[float, float]]:
    """Start an idle bottle on `backend`, measure each group once the agent idles, stop it."""
    d = tmp / backend
    d.mkdir()
    (d / "bot-bottle.yaml").write_text(MANIFEST.format(backend=backend))
    bb = [sys.executable, "-m", "bot_bottle"]
    subprocess.run([*bb, "trust", "--yes"], env=env, cwd=d, capture_output=True, check=True)
    p = subprocess.Popen([*bb, "run", "idle", "-y"], env=env, cwd=d, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)  # fmt: skip
    try:
        assert p.stdout is not None
        if p.stdout.readline().strip() != "idle":
            raise SystemExit(f"the {backend} bottle did not start:\n{p.communicate()[1]}")
        time.sleep(3)  # the guest's and the sidecar's start-up work settles
        home = Path(env["BOT_BOTTLE_HOME"])
        (meta,) = [json.loads(m.read_text()) for m in (home / "bottles").glob("*/metadata.json")]
        pids = meta["pids"]
        groups: dict[str, list[int]] = {"launcher": [p.pid], "sidecars": []}
        groups["sidecars"] = [int(v) for k, v in pids.items() if k != "launcher"]
        helper = "egress helper (per user)"
        groups[helper] = []
        for kid in descendants(p.pid):  # the helper too: the launcher is its subreaper
            if kid not in groups["sidecars"]:
                groups.setdefault(group_of(command(kid)), []).append(kid)
        if backend == "docker":
            groups.update(container_groups(meta["slug"]))
        if os.environ.get("BB_MEM_DEBUG"):
            for name, members in groups.items():
                for m in members:
                    print(backend, name, m, memory(m), command(m)[:150], file=sys.stderr)
        out = {}
        for name, members in groups.items():
            sizes = [memory(m) for m in members]
            out[name] = (sum(s[0] for s in sizes), sum(s[1] for s in sizes))
        subprocess.run([*bb, "stop", meta["slug"]], env=env, cwd=d, capture_output=True,
                       timeout=60, check=False)  # fmt: skip
        p.communicate(timeout=60)
        subprocess.run([*bb, "egress", "warm", "--stop"], env=env, cwd=d, capture_output=True,
                       check=False)  # fmt: skip
        return out
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", action="append", choices=("namespace", "docker", "microvm"))
    ap.add_argument("-n", type=int, default=3)
    args = ap.parse_args()
    backends = args.backend or ["namespace", "microvm"]
    from bot_bottle.images.guest.store import cache_dir

    rows: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for _ in range(args.n):
        for backend in backends:
            tmp = Path(tempfile.mkdtemp(prefix="bb-mem-"))
            env = {**os.environ, "BOT_BOTTLE_HOME": str(tmp / "home"),
                   "BOT_BOTTLE_GUEST_CACHE": str(cache_dir())}  # fmt: skip
            try:
                for name, v in measure(backend, tmp, env).items():
                    rows.setdefault(backend, {}).setdefault(name, []).append(v)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    print(f"median of {args.n} idle bottles per backend, MiB")
    print(f"{'backend':10} {'processes':26} {'RSS':>8} {'PSS':>8}")
    for backend, groups in rows.items():
        per_bottle = [0.0, 0.0]
        for name, vals in groups.items():
            rss = statistics.median(v[0] for v in vals)
            pss = statistics.median(v[1] for v in vals)
            print(f"{backend:10} {name:26} {rss:8.1f} {pss:8.1f}")
            if "per user" not in name:
                per_bottle[0] += rss
                per_bottle[1] += pss
        print(f"{backend:10} {'per bottle (sum)':26} {per_bottle[0]:8.1f} {per_bottle[1]:8.1f}")


if __name__ == "__main__":
    main()
