"""Startup time: `bot-bottle run -y` to the agent's first instruction and to exit,
against bare bubblewrap and sandbox-runtime (`srt true`), measured in the same run, one
round of each in turn so they share the machine's noise. Prints a ratio table.

The agent is the `command` template running `date +%s.%N`: its output is the moment
the agent's first instruction ran. Three ways a run starts its egress sidecar:
- default: the per-user egress helper (started by the first run, reused) forks it;
- first: the first run, which starts the helper itself;
- cold: `BOT_BOTTLE_EGRESS_HELPER=off`, each run spawns its sidecar (mitmproxy import).

`srt` comes from `scripts/setup --bench` (.bench/node_modules/.bin/srt) or PATH; without
it the srt row is left out and said so.

Run: python benchmarks/startup.py [-n 10]
"""

from __future__ import annotations

import argparse
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
    agent_provider: {template: command, command: [date, "+%s.%N"]}
    workspace: none
    backend: namespace
agents:
  bench: {bottle: b}
"""


def bare_bwrap() -> float:
    t0 = time.perf_counter()
    subprocess.run(["bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr",
                    "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
                    "--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev",
                    "true"], check=True)  # fmt: skip
    return time.perf_counter() - t0


def srt_path() -> str | None:
    local = Path(__file__).resolve().parents[1] / ".bench" / "node_modules" / ".bin" / "srt"
    return str(local) if local.exists() else shutil.which("srt")


def srt_true(srt: str, home: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([srt, "true"], check=True, capture_output=True,
                   env={**os.environ, "HOME": str(home)})  # fmt: skip
    return time.perf_counter() - t0


def stop_helper(env: dict[str, str], cwd: Path) -> None:
    subprocess.run([sys.executable, "-m", "bot_bottle", "egress", "warm", "--stop"], env=env,
                   cwd=cwd, capture_output=True, check=True)  # fmt: skip


def bottle_run(env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(seconds to the agent's first instruction, seconds to bot-bottle's exit)."""
    t0 = time.time()
    p0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "bot_bottle", "run", "bench", "-y"], env=env,
                       cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       check=False)  # fmt: skip
    total = time.perf_counter() - p0
    if r.returncode != 0:
        raise SystemExit(f"bot-bottle run failed:\n{r.stderr}")
    first = float(r.stdout.strip().splitlines()[-1])
    return first - t0, total


def approve(env: dict[str, str], cwd: Path) -> None:
    """`run -y` starts only an approved manifest: approve it once, outside the timing."""
    subprocess.run([sys.executable, "-m", "bot_bottle", "trust", "--yes"], env=env, cwd=cwd,
                   capture_output=True, check=True)  # fmt: skip


def cli_import() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bot_bottle", "--help"], capture_output=True,
                   check=True)  # fmt: skip
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=10)
    n = ap.parse_args().n
    tmp = Path(tempfile.mkdtemp(prefix="bb-bench-"))
    (tmp / "bot-bottle.yaml").write_text(MANIFEST)
    (tmp / "srt-home").mkdir()
    env = {**os.environ, "BOT_BOTTLE_HOME": str(tmp / "home")}
    cold_env = {**env, "BOT_BOTTLE_EGRESS_HELPER": "off"}
    approve(env, tmp)
    srt = srt_path()
    samples: dict[str, list[float]] = {}

    def add(name: str, secs: float) -> None:
        samples.setdefault(name, []).append(secs)

    try:
        for _ in range(n):
            add("bare bwrap ... true", bare_bwrap())
            if srt:
                add("srt true (sandbox-runtime)", srt_true(srt, tmp / "srt-home"))
            add("bot-bottle --help (CLI import)", cli_import())
            stop_helper(env, tmp)
            first = bottle_run(env, tmp)
            add("run -y, first run (starts helper): exit", first[1])
            default = bottle_run(env, tmp)
            add("run -y, default (helper): first instruction", default[0])
            add("run -y, default (helper): exit", default[1])
            cold = bottle_run(cold_env, tmp)
            add("run -y, cold sidecar: first instruction", cold[0])
            add("run -y, cold sidecar: exit", cold[1])
    finally:
        stop_helper(env, tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    rows = {name: statistics.median(v) for name, v in samples.items()}
    bare = rows["bare bwrap ... true"]
    ref = rows.get("srt true (sandbox-runtime)")
    print(f"median of {n} rounds, each measuring every row in turn")
    if ref is None:
        print("srt not found (scripts/setup --bench installs it): no srt column")
    print(f"{'measurement':47} {'ms':>8} {'x bare bwrap':>13} {'x srt true':>11}")
    for name, secs in rows.items():
        vs_srt = f"{secs / ref:11.2f}" if ref else f"{'-':>11}"
        print(f"{name:47} {secs * 1000:8.1f} {secs / bare:13.1f} {vs_srt}")


if __name__ == "__main__":
    main()
