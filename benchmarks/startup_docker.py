"""Docker backend start-up: how long from "start a bottle" to the agent's first
instruction, with images cached, against `docker run --rm IMAGE true` in the same run.

Three figures, each the median of --runs warm runs (one warm-up run first):
1. baseline: `docker run --rm <agent image> true` through the docker CLI;
2. backend: DockerBackend prepare -> launch -> attach(`date +%s.%N`), the bottle
   (one container with no network, volumes) built from nothing, with a fake
   host sidecar socket; the agent's printed clock is its first instruction;
3. full: `bot-bottle run --backend docker` of a `command` agent (CLI start, plan,
   egress sidecar, provisioning, attach), same clock; removal is not timed.

Goal: backend and full within 1.5 s of the baseline. Run as a user who can reach the
Docker engine, with images built (`bot-bottle images build`):

    python benchmarks/startup_docker.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bot_bottle.backends.docker.backend import DockerBackend
from bot_bottle.backends.spec import BottleSpec, SidecarLink
from bot_bottle.executor import ProcessExecutor
from bot_bottle.images.build import BUNDLED, ensure

CLOCK = ("date", "+%s.%N")
MANIFEST = """\
bottles:
  clock:
    agent_provider:
      template: command
      command: [date, "+%s.%N"]
    egress:
      routes: []
    workspace: none
agents:
  clock:
    bottle: clock
"""


def first_clock(out: str) -> float:
    for line in out.splitlines():
        try:
            return float(line.strip())
        except ValueError:
            continue
    raise RuntimeError(f"no clock in the agent's output:\n{out}")


def baseline(image: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(["docker", "run", "--rm", image, "true"], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - t0


def backend_start(tmp: Path) -> float:
    sockets = tmp / "sockets"
    sockets.mkdir(parents=True, exist_ok=True)
    sock_path = sockets / "egress.sock"
    sock_path.unlink(missing_ok=True)
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(sock_path))
    spec = BottleSpec(f"bench-{secrets.token_hex(3)}", tmp / "state", "none", "",
                      sidecars=(SidecarLink("egress", sock_path, 3128),), image="general")  # fmt: skip
    backend = DockerBackend(ProcessExecutor())
    try:
        t0 = time.time()
        backend.prepare(spec)
        backend.launch(spec)
        cmd = backend.exec_cmd(spec, CLOCK, tty=False)
        p = subprocess.run(cmd.argv, env=cmd.env, capture_output=True, text=True, check=True)
        return first_clock(p.stdout) - t0
    finally:
        backend.remove(spec)
        srv.close()


def full_run(tmp: Path) -> float:
    (tmp / "bot-bottle.yaml").write_text(MANIFEST)
    env = {**os.environ, "BOT_BOTTLE_HOME": str(tmp / "home")}
    # `run -y` starts only an approved manifest: approve it once, outside the timing.
    subprocess.run([sys.executable, "-m", "bot_bottle", "trust", "--yes"], env=env, cwd=tmp,
                   capture_output=True, check=True)  # fmt: skip
    t0 = time.time()
    p = subprocess.run([sys.executable, "-m", "bot_bottle", "run", "-y", "--backend", "docker",
                        "clock"], cwd=tmp, env=env, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, check=False)  # fmt: skip
    if p.returncode != 0:
        raise RuntimeError(f"bot-bottle run failed:\n{p.stdout}\n{p.stderr}")
    return first_clock(p.stdout) - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-full", action="store_true", help="skip the `bot-bottle run` figure")
    args = ap.parse_args()
    image, _ = ensure(BUNDLED["agent-general"])
    rows: dict[str, list[float]] = {"baseline": [], "backend": [], "full": []}
    with tempfile.TemporaryDirectory(prefix="bb-bench-") as d:
        tmp = Path(d)
        for i in range(args.runs + 1):  # the first round warms caches and is dropped
            sample = {"baseline": baseline(image), "backend": backend_start(tmp)}
            if not args.no_full:
                sample["full"] = full_run(tmp)
            if i:
                for k, v in sample.items():
                    rows[k].append(v)
    base = statistics.median(rows["baseline"])
    print(f"{'figure':<10} {'median s':>9} {'min s':>7} {'vs baseline':>12} {'ratio':>6}")
    for name, values in rows.items():
        if not values:
            continue
        med = statistics.median(values)
        print(f"{name:<10} {med:>9.3f} {min(values):>7.3f} {med - base:>+11.3f}s "
              f"{med / base:>6.2f}")  # fmt: skip
    for name in ("backend", "full"):
        if rows[name]:
            extra = statistics.median(rows[name]) - base
            verdict = "within" if extra <= 1.5 else "OVER"
            print(f"{name}: {extra:+.3f} s over baseline: {verdict} the 1.5 s goal")


if __name__ == "__main__":
    main()
