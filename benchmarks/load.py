"""Concurrent keep-alive load: direct vs bare mitmproxy vs a real bottle, in one run.

    .venv/bin/python benchmarks/load.py [-c 200] [-s 60] [--timeout 30] [--backend namespace]

`loadgen.py` opens C keep-alive HTTPS connections and issues GETs back to back for S
seconds: on the host straight to the fake upstream (1), on the host through a bare
mitmdump (2), and inside a bottle through its forwarder, socket relay and egress (3). A
request slower than --timeout is an error. Reports requests, errors, p50/p99 and the
proxy's host-side RSS over time. Goal: 0 errors, p99 (3) <= 2x (2), RSS flat.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_support import RssSampler, in_bottle, loadgen, mitmdump, upstream


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-c", "--conns", type=int, default=200)
    ap.add_argument("-s", "--seconds", type=float, default=60)
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--backend", default="namespace")
    ap.add_argument("--upstream", choices=["asyncio", "threaded"], default="asyncio")
    ap.add_argument("--only", choices=["direct", "mitmproxy", "bottle"], action="append")
    a = ap.parse_args()
    cfg = {"mode": "load", "conns": a.conns, "seconds": a.seconds, "timeout": a.timeout}
    only = set(a.only or ["direct", "mitmproxy", "bottle"])
    tmp = Path(tempfile.mkdtemp(prefix="bb-load-"))
    rows: dict[str, tuple[dict[str, Any], str]] = {}
    try:
        with upstream(tmp, a.upstream) as up:
            if "direct" in only:
                rows["(1) direct"] = (loadgen(cfg, up, "", up.ca), "")
            if "mitmproxy" in only:
                with mitmdump(tmp, up) as (proxy, ca, pid):
                    with RssSampler(lambda: [pid]) as rss:
                        res = loadgen(cfg, up, proxy, ca)
                    rows["(2) bare mitmproxy"] = (res, rss.summary())
            if "bottle" in only:
                res, rss = in_bottle(tmp / "bottle", cfg, up, a.backend)
                rows[f"(3) {a.backend} bottle"] = (res, rss.summary())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{a.conns} connections, {a.seconds:g} s, timeout {a.timeout:g} s")
    print(
        f"{'setup':22} {'requests':>9} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
        "  proxy RSS (MiB)"
    )
    for name, (r, rss) in rows.items():
        print(
            f"{name:22} {r['requests']:9d} {r['errors']:7d} {r['p50_ms']:8.1f} "
            f"{r['p99_ms']:8.1f} {r['max_ms']:8.1f}  {rss}"
        )
        print(f"{'':22} slowest connection set-up (CONNECT + TLS): {r['open_max_ms']:.0f} ms")
        if r["errors"]:
            print(f"{'':22} errors: {r['error_kinds']}")
    bare, ours = rows.get("(2) bare mitmproxy"), rows.get(f"(3) {a.backend} bottle")
    if bare and ours:
        b, o = bare[0], ours[0]
        print(
            f"ratio (3)/(2): requests {o['requests'] / max(1, b['requests']):.2f}, "
            f"p50 {o['p50_ms'] / b['p50_ms']:.2f}, p99 {o['p99_ms'] / b['p99_ms']:.2f} "
            "(goal: 0 errors, p99 <= 2.0)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
