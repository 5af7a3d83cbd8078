"""Egress throughput, all in one run: direct vs bare mitmproxy vs bot-bottle egress.

    /opt/bbvenv/bin/python benchmarks/egress.py [--small N] [--uploads N]

(1) direct to the fake HTTPS upstream, (2) `mitmdump` with no addons (same upstream
trust, lazy connections), (3) `bot-bottle egress serve` with 50 routes and DLP on.
Small GETs over one keep-alive HTTPS connection, then 1 MiB uploads. Also times the
pure route decision and the DLP scanner. Figures are ratios within this run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration" / "egress"))

from egress_upstream import Upstream, start_upstream  # noqa: E402

from bot_bottle.policy.dlp import Scanner  # noqa: E402
from bot_bottle.policy.egress_policy import EgressPolicy  # noqa: E402
from bot_bottle.policy.route import RouteTable, decide_route  # noqa: E402

SECRET = "sk-fake-SECRET-bench-0123456789abcdef"
MIB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("proxy exited early")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("proxy did not listen")


def routes_doc(up: Upstream, dlp: bool = True) -> dict[str, object]:
    routes: list[dict[str, object]] = [
        {"host": f"svc{i}.bench.test", "paths": ["/api", "/v2"], "methods": ["GET", "POST"]}
        for i in range(49)
    ]
    routes.append(
        {
            "host": "api.example.test",
            "port": up.port,
            "paths": ["/v1"],
            "auth": {"scheme": "Bearer", "slot": "EGRESS_TOKEN_0"},
        }
    )
    return {
        "version": 1,
        "bottle": "bench",
        "routes": routes,
        "hosts": {"api.example.test": "127.0.0.1"},
        "ssrf_ip_allowlist": ["127.0.0.1/32"],
        "upstream_ca": str(up.ca_path),
        "dlp": {"enabled": dlp, "canaries": ["AKIAFAKECANARY0000001"]},
    }


def run_load(client: httpx.Client, base: str, small: int, uploads: int) -> tuple[float, float]:
    """(small requests/s, upload MB/s) on one keep-alive connection."""
    client.get(f"{base}/v1/warm")
    t = time.perf_counter()
    for i in range(small):
        r = client.get(f"{base}/v1/small?i={i}")
        assert r.status_code == 200, r.text
    rps = small / (time.perf_counter() - t)
    body = os.urandom(MIB // 2).hex().encode()  # 1 MiB of text, no secrets
    client.post(f"{base}/v1/upload", content=body)
    t = time.perf_counter()
    for _ in range(uploads):
        r = client.post(f"{base}/v1/upload", content=body)
        assert r.status_code == 200, r.text
    mbps = uploads * len(body) / MIB / (time.perf_counter() - t)
    return rps, mbps


def run_egress(
    tmp: Path,
    up: Upstream,
    dlp: bool,
    args: argparse.Namespace,
    procs: list[subprocess.Popen[bytes]],
) -> tuple[float, float]:
    tmp.mkdir()
    routes = tmp / "routes.json"
    routes.write_text(json.dumps(routes_doc(up, dlp)))
    econf = tmp / "egress"
    eport = free_port()
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot_bottle",
            "egress",
            "serve",
            "--routes",
            str(routes),
            "--listen",
            f"127.0.0.1:{eport}",
            "--audit-log",
            str(tmp / "audit.jsonl"),
            "--confdir",
            str(econf),
        ],
        env={**os.environ, "EGRESS_TOKEN_0": SECRET},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=str(ROOT),
    )
    procs.append(p)
    assert p.stdout is not None
    line = p.stdout.readline().decode()
    assert line.startswith("READY "), line
    ctx = ssl.create_default_context(cafile=str(econf / "mitmproxy-ca-cert.pem"))
    with httpx.Client(proxy=f"http://127.0.0.1:{eport}", verify=ctx, timeout=60) as c:
        return run_load(c, f"https://api.example.test:{up.port}", args.small, args.uploads)


def micro(fn: Callable[[], object], n: int) -> float:
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", type=int, default=400)
    ap.add_argument("--uploads", type=int, default=20)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bb-egress-bench-"))
    up = start_upstream(tmp)
    results: dict[str, tuple[float, float]] = {}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        up_ctx = ssl.create_default_context(cafile=str(up.ca_path))
        with httpx.Client(verify=up_ctx, timeout=60) as c:
            results["(1) direct"] = run_load(
                c, f"https://127.0.0.1:{up.port}", args.small, args.uploads
            )

        from bot_bottle.sidecars.egress.trust import write_upstream_bundle

        mconf = tmp / "mitm"
        mconf.mkdir()
        bundle = write_upstream_bundle(mconf, str(up.ca_path))
        port = free_port()
        mitmdump = shutil.which("mitmdump", path=os.path.dirname(sys.executable)) or "mitmdump"
        p = subprocess.Popen(
            [
                mitmdump,
                "-q",
                "--listen-host",
                "127.0.0.1",
                "--listen-port",
                str(port),
                "--set",
                f"confdir={mconf}",
                "--set",
                f"ssl_verify_upstream_trusted_ca={bundle}",
                "--set",
                "connection_strategy=lazy",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(p)
        wait_port(port, p)
        ctx = ssl.create_default_context(cafile=str(mconf / "mitmproxy-ca-cert.pem"))
        with httpx.Client(proxy=f"http://127.0.0.1:{port}", verify=ctx, timeout=60) as c:
            results["(2) bare mitmproxy"] = run_load(
                c, f"https://127.0.0.1:{up.port}", args.small, args.uploads
            )

        for name, dlp in (("(3) bot-bottle egress", True), ("(3b) egress, DLP off", False)):
            results[name] = run_egress(tmp / f"egress-dlp-{dlp}", up, dlp, args, procs)
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
        up.stop()

    policy = EgressPolicy.from_json(json.dumps(routes_doc(up)))
    table = RouteTable.build(policy.routes)  # as the sidecar's Gate holds it
    route_s = micro(
        lambda: decide_route(table, "GET", "api.example.test", "/v1/some/./deep//path?x=1"),
        20000,
    )
    scanner = Scanner(exact={"EGRESS_TOKEN_0": SECRET}, canaries=["AKIAFAKECANARY0000001"])
    body = os.urandom(MIB // 2).hex().encode()
    dlp_s = micro(lambda: scanner.first(body), 20)

    print(f"{'setup':24} {'small GET req/s':>16} {'1 MiB upload MB/s':>18}")
    for name, (rps, mbps) in results.items():
        print(f"{name:24} {rps:16.1f} {mbps:18.1f}")
    b, e = results["(2) bare mitmproxy"], results["(3) bot-bottle egress"]
    print(f"{'ratio (3)/(2)':24} {e[0] / b[0]:16.2f} {e[1] / b[1]:18.2f}   (goal >= 0.85)")
    print(f"route decision (50 routes, normalization): {route_s * 1e6:.1f} us  (goal < 20 us)")
    print(f"DLP scan of a 1 MiB body: {1 / dlp_s:.0f} MB/s  (goal >= 100 MB/s)")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
