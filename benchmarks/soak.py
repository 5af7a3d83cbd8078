"""A soak: one bottle under steady mixed traffic for minutes, watching for leaks.

    .venv/bin/python benchmarks/soak.py [--minutes 10] [--backend namespace]

Inside a real bottle, `loadgen.py` (mode `soak`) keeps up small keep-alive GETs (4
connections), 256 KiB uploads (2), SSE streams of 20 events (2) and WebSocket echo
sessions of 20 messages (2) against the fake upstream for --minutes. On the host, the
egress sidecar's resident set and open file descriptors are sampled every --every
seconds. Reports operations and errors per kind, errors per minute, and RSS/FDs over
time: a leak shows as a line that keeps climbing. Not run in CI (it takes minutes).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_support import in_bottle, rss_mib, upstream


def fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


@dataclass
class ProcSampler:
    """Samples (seconds since start, RSS MiB, open FDs) summed over `find()`'s pids."""

    find: Callable[[], list[int]]
    every: float = 10.0
    samples: list[tuple[float, float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> ProcSampler:
        self._t0 = time.monotonic()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            pids = self.find()
            rss = sum(rss_mib(p) for p in pids)
            if rss:
                fds = sum(fd_count(p) for p in pids)
                self.samples.append((time.monotonic() - self._t0, round(rss, 1), fds))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--every", type=float, default=10, help="sampling period, seconds")
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--backend", default="namespace")
    a = ap.parse_args()
    cfg = {"mode": "soak", "seconds": a.minutes * 60, "timeout": a.timeout}
    tmp = Path(tempfile.mkdtemp(prefix="bb-soak-"))
    try:
        with upstream(tmp) as up:
            res, sampler = in_bottle(tmp / "bottle", cfg, up, a.backend,
                                     lambda find: ProcSampler(find, a.every))  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"soak: {a.minutes:g} min, {a.backend} bottle, elapsed {res['elapsed_s']} s")
    print(f"{'kind':8} {'ops':>8} {'errors':>7}")
    for kind, n in res["ops"].items():
        print(f"{kind:8} {n:8d} {res['errors'][kind]:7d}")
    total = sum(res["errors"].values())
    print(f"errors: {total} in all; per minute {res['errors_per_minute'] or '{}'}")
    for k in res["error_kinds"]:
        print(f"  {k}")
    s = sampler.samples
    if s:
        print("egress sidecar over time (s: RSS MiB / FDs):")
        step = max(1, len(s) // 12)
        print("  " + "  ".join(f"{t:.0f}: {r:.0f}/{f}" for t, r, f in [*s[::step], s[-1]]))
        tail = s[len(s) // 2 :]
        print(f"RSS first {s[0][1]:.0f} MiB, peak {max(x[1] for x in s):.0f}, last {s[-1][1]:.0f}; "
              f"FDs first {s[0][2]}, peak {max(x[2] for x in s)}, last {s[-1][2]}; "
              f"second half RSS {min(x[1] for x in tail):.0f}..{max(x[1] for x in tail):.0f}")  # fmt: skip
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
