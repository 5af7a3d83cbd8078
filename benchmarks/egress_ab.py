"""Egress A/B in one run: two source trees' `bot-bottle egress serve`, alternated.

    python benchmarks/egress_ab.py BASELINE_TREE [--python PY] [--rounds N]

On a shared, busy machine two separate runs of `egress.py` differ by more than the
change being measured; here both sidecars run side by side against one upstream and
the load alternates between them in rounds (the order flips every round), so both see
the same noise. Reports medians and after/before ratios for: small GETs on a keep-alive
connection, 1 MiB uploads, and new connections through the Unix-socket relay (CONNECT,
TLS, one GET each), and the egress process's own CPU time per small GET and per new
connection, which other load on the host disturbs far less than wall-clock rates. BASELINE_TREE is a checkout of the code to compare against (e.g.
`git worktree add /tmp/base main`); `--python` is an interpreter that can import it
(default: this one, with the tree first on PYTHONPATH).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration" / "egress"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from egress import MIB, SECRET, routes_doc  # noqa: E402
from egress_upstream import Upstream, start_upstream  # noqa: E402


class Side:
    """One tree's egress, listening on a Unix socket (as in a bottle) and on TCP."""

    def __init__(self, tree: Path, python: str, tmp: Path, up: Upstream) -> None:
        tmp.mkdir()
        routes = tmp / "routes.json"
        routes.write_text(json.dumps(routes_doc(up, True)))
        self.sock = Path(tempfile.mkdtemp(prefix="bbab")) / "egress.sock"
        env = {**os.environ, "EGRESS_TOKEN_0": SECRET, "PYTHONPATH": str(tree)}
        self.procs = []
        for listen, conf in ((f"unix:{self.sock}", "cu"), ("127.0.0.1:0", "ct")):
            p = subprocess.Popen(
                [python, "-m", "bot_bottle", "egress", "serve", "--routes", str(routes),
                 "--listen", listen, "--audit-log", str(tmp / f"{conf}.jsonl"),
                 "--confdir", str(tmp / conf)],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=str(tree),
            )  # fmt: skip
            self.procs.append(p)
            assert p.stdout is not None
            line = p.stdout.readline().decode()
            assert line.startswith("READY "), line
            if listen.startswith("unix:"):
                self.unix_ctx = ssl.create_default_context(
                    cafile=str(tmp / conf / "mitmproxy-ca-cert.pem")
                )
            else:
                ctx = ssl.create_default_context(cafile=str(tmp / conf / "mitmproxy-ca-cert.pem"))
                self.client = httpx.Client(
                    proxy=f"http://{line.split()[1]}", verify=ctx, timeout=60
                )

    def stop(self) -> None:
        self.client.close()
        for p in self.procs:
            p.terminate()
            p.wait(10)


def new_connection(side: Side, port: int) -> None:
    s = socket.socket(socket.AF_UNIX)
    s.connect(str(side.sock))
    s.sendall(
        f"CONNECT api.example.test:{port} HTTP/1.1\r\nHost: api.example.test\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    t = side.unix_ctx.wrap_socket(s, server_hostname="api.example.test")
    t.sendall(
        f"GET /v1/c HTTP/1.1\r\nHost: api.example.test:{port}\r\nConnection: close\r\n\r\n".encode()
    )
    out = b""
    while chunk := t.recv(65536):
        out += chunk
    assert out.startswith(b"HTTP/1.1 200"), out[:80]
    t.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (robust to other load on the host)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rate(n: int, fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - t)


def cpu_ms(pid: int, n: int, fn: Callable[[], object]) -> float:
    """Egress CPU milliseconds per call of `fn`."""
    c = cpu_seconds(pid)
    for _ in range(n):
        fn()
    return (cpu_seconds(pid) - c) * 1000 / n


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("baseline", type=Path)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--rounds", type=int, default=12)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bb-egress-ab-"))
    up = start_upstream(tmp)
    base = f"https://api.example.test:{up.port}"
    body = os.urandom(MIB // 2).hex().encode()
    sides = {"before": Side(args.baseline.resolve(), args.python, tmp / "a", up),
             "after": Side(ROOT, sys.executable, tmp / "b", up)}  # fmt: skip
    figures: dict[str, dict[str, list[float]]] = {k: {} for k in sides}
    try:
        for side in sides.values():
            side.client.post(f"{base}/v1/upload", content=body)
            new_connection(side, up.port)
        for rnd in range(args.rounds):
            order = list(sides.items()) if rnd % 2 == 0 else list(reversed(sides.items()))
            for name, side in order:
                c = side.client
                fig = figures[name]
                fig.setdefault("small GET req/s", []).append(
                    rate(40, lambda c=c: c.get(f"{base}/v1/small").raise_for_status())
                )
                fig.setdefault("1 MiB upload MB/s", []).append(
                    rate(3, lambda c=c: c.post(f"{base}/v1/upload", content=body))
                )
                fig.setdefault("new unix connections/s", []).append(
                    rate(15, lambda side=side: new_connection(side, up.port))
                )
                tcp_pid, unix_pid = side.procs[1].pid, side.procs[0].pid
                fig.setdefault("egress CPU ms / small GET", []).append(
                    cpu_ms(tcp_pid, 100, lambda c=c: c.get(f"{base}/v1/small").raise_for_status())
                )
                fig.setdefault("egress CPU ms / new conn", []).append(
                    cpu_ms(unix_pid, 20, lambda side=side: new_connection(side, up.port))
                )
    finally:
        for side in sides.values():
            side.stop()
        up.stop()
    print(
        f"{'median of ' + str(args.rounds) + ' rounds':26} {'before':>9} {'after':>9} {'ratio':>7}"
    )
    for key in figures["before"]:
        b, a = statistics.median(figures["before"][key]), statistics.median(figures["after"][key])
        print(f"{key:26} {b:9.1f} {a:9.1f} {a / b:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
