"""Bulk download: direct vs bare mitmproxy vs a real bottle, with the proxy's peak RSS.

    .venv/bin/python benchmarks/bulk.py [--mib 1024] [--backend namespace]

`loadgen.py` downloads one body of --mib MiB over HTTPS (connection and TLS set up
before the clock starts): (1) on the host straight from the fake upstream, (2) through
a bare mitmdump with bodies streamed, (3) inside a bottle through the forwarder, the
socket relay and the egress. Goal: (3) >= 0.5 of (1), RSS flat whatever the size.
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
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--backend", default="namespace")
    ap.add_argument("--http", choices=["1.1", "2"], default="1.1", help="what curl offers")
    ap.add_argument("--only", choices=["direct", "mitmproxy", "bottle"], action="append")
    a = ap.parse_args()
    cfg = {"mode": "bulk", "size": a.mib * 1024 * 1024, "http": a.http}
    only = set(a.only or ["direct", "mitmproxy", "bottle"])
    tmp = Path(tempfile.mkdtemp(prefix="bb-bulk-"))
    rows: dict[str, tuple[dict[str, Any], str]] = {}
    try:
        with upstream(tmp) as up:
            if "direct" in only:
                rows["(1) direct"] = (loadgen(cfg, up, "", up.ca), "")
            if "mitmproxy" in only:
                with mitmdump(tmp, up) as (proxy, ca, pid):
                    with RssSampler(lambda: [pid], every=0.25) as rss:
                        res = loadgen(cfg, up, proxy, ca)
                    rows["(2) bare mitmproxy"] = (res, rss.summary())
            if "bottle" in only:
                res, sampler = in_bottle(tmp / "bottle", cfg, up, a.backend)
                rows[f"(3) {a.backend} bottle"] = (res, sampler.summary())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    direct = rows.get("(1) direct")
    print(f"one {a.mib} MiB download over HTTPS (curl, HTTP/{a.http})")
    print(f"{'setup':22} {'MiB/s':>8} {'x direct':>9}  proxy RSS (MiB)")
    for name, (r, rss) in rows.items():
        ratio = f"{r['mib_s'] / direct[0]['mib_s']:9.2f}" if direct else f"{'':9}"
        print(f"{name:22} {r['mib_s']:8.1f} {ratio}  {rss}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
