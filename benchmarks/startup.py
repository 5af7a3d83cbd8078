"""Startup time: `bot-bottle run -y` to the agent's first instruction, against bare
bubblewrap running `true`, measured in the same run. Prints a ratio table.

The agent is the `command` template running `date +%s.%N`: its output is the moment
the agent's first instruction ran. Two sidecar modes are measured:
- cold: each bottle spawns its egress sidecar (pays the mitmproxy import);
- warm: an egress zygote (pre-imported) forks one sidecar per bottle.

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
    env = {**os.environ, "BOT_BOTTLE_HOME": str(tmp / "home")}
    approve(env, tmp)
    rows: list[tuple[str, float]] = []
    try:
        bare = statistics.median(bare_bwrap() for _ in range(n))
        rows.append(("bare bwrap ... true", bare))
        rows.append(
            ("bot-bottle --help (CLI import)", statistics.median(cli_import() for _ in range(n)))
        )
        cold = [bottle_run(env, tmp) for _ in range(n)]
        rows.append(
            ("run -y, cold sidecar: first instruction", statistics.median(c[0] for c in cold))
        )
        rows.append(("run -y, cold sidecar: exit", statistics.median(c[1] for c in cold)))
        sock = tmp / "home" / "run" / "egress-zygote.sock"
        zy = subprocess.Popen([sys.executable, "-m", "bot_bottle.sidecars.egress.zygote", str(sock)],
                              env=env, stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert zy.stdout is not None
        if not zy.stdout.readline().startswith("READY"):  # readiness line, no sleep
            raise SystemExit("zygote did not start")
        try:
            warm = [bottle_run(env, tmp) for _ in range(n)]
        finally:
            zy.terminate()
            zy.wait()
        rows.append(
            ("run -y, warm zygote: first instruction", statistics.median(w[0] for w in warm))
        )
        rows.append(("run -y, warm zygote: exit", statistics.median(w[1] for w in warm)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"median of {n} runs; goal: first instruction < 400 ms")
    print(f"{'measurement':45} {'ms':>8} {'x bare bwrap':>13}")
    for name, secs in rows:
        print(f"{name:45} {secs * 1000:8.1f} {secs / bare:13.1f}")


if __name__ == "__main__":
    main()
