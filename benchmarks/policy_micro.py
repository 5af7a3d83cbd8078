"""Micro-benchmarks for the pure policy layer: route decisions and DLP scanning.

Prints µs per `decide_route` call with 50 routes, and `Scanner.first` throughput
on 1 MiB of ordinary text (Python source and JSON), best and median of several
runs, plus a baseline taken in the same run (`bytes.find` of an absent needle) so
numbers from different machines can be compared as ratios. The scanner is
configured as an egress sidecar realistically is: built-in detectors, two sidecar
tokens (each also searched base64-, percent- and JSON-encoded), two canaries and
one operator pattern. The egress upload target (>= 0.85x bare mitmproxy) needs
>= ~400 MB/s here.

    python benchmarks/policy_micro.py
"""

from __future__ import annotations

import json
import pathlib
import statistics
import time
from collections.abc import Callable

import bot_bottle
from bot_bottle.policy.dlp import Scanner
from bot_bottle.policy.egress_policy import Route
from bot_bottle.policy.route import RouteTable, decide_route

MIB = 1 << 20


def timings(fn: Callable[[], object], repeat: int, number: int) -> list[float]:
    """Per-call seconds of each of `repeat` runs of `number` calls."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t) / number)
    return times


def best(fn: Callable[[], object], repeat: int, number: int) -> float:
    """Best per-call seconds over `repeat` runs of `number` calls."""
    return min(timings(fn, repeat, number))


def realistic_scanner() -> Scanner:
    """What an egress sidecar builds: two held tokens, two canaries, one operator pattern."""
    return Scanner(
        exact={
            "EGRESS_TOKEN_GITHUB": "ghp_" + "Q7vK2mXp9LrT4wZb8NcY3hJd6FsA1gEu0oRi",
            "EGRESS_TOKEN_ANTHROPIC": "sk-ant-api03-" + "Zx8Cv7Bn6Mm5Ll4Kk3Jj2Hh1Gg0Ff9Dd8Ss7/+Aa6",
        },
        canaries=["CANARY-0123456789abcdef", "bb-canary-7f3e9a1c5d2b4680"],
        patterns=[r"ACME-[0-9]{6}"],
    )


def routes() -> tuple[Route, ...]:
    out = [
        Route(host=f"api{i}.example{i}.com", paths=("/v1", "/v2/"), methods=("GET", "POST"))
        for i in range(48)
    ]
    out.append(Route(host="*.npmjs.org"))
    out.append(Route(host="api.github.com", paths=("/repos", "/graphql"), methods=("GET",)))
    return tuple(out)


def corpus_source() -> bytes:
    root = pathlib.Path(bot_bottle.__file__).parent
    text = b"".join(p.read_bytes() for p in sorted(root.rglob("*.py")))
    return (text * (MIB // max(len(text), 1) + 1))[:MIB]


def corpus_json() -> bytes:
    item = {
        "id": 12345,
        "name": "requests",
        "description": "Python HTTP for Humans, with a longer description of the package.",
        "tags": ["http", "client", "web"],
        "url": "https://pypi.org/project/requests/",
        "downloads": {"last_day": 1234567, "last_week": 9876543},
    }
    text = json.dumps([item] * 4000).encode()
    return (text * (MIB // len(text) + 1))[:MIB]


def main() -> None:
    rs = RouteTable.build(routes())  # as the sidecar's Gate holds it
    cases = [
        ("GET", "api.github.com", "/repos/o/r/pulls?state=open"),  # last route: worst case
        ("GET", "evil.example", "/"),
        ("POST", "api7.example7.com", "/v2/x/../y"),
    ]
    for method, host, target in cases:
        per = best(lambda m=method, h=host, t=target: decide_route(rs, m, h, t), 5, 20000)
        print(f"decide_route 50 routes {method} {host}{target}: {per * 1e6:.2f} µs/decision")

    scanner = realistic_scanner()
    baseline_data = corpus_source()
    base = best(lambda: baseline_data.find(b"\x00absent\x00"), repeat=5, number=20)
    print(f"baseline bytes.find over 1 MiB: {MIB / base / 1e6:.0f} MB/s")
    for name, data in (("python source", corpus_source()), ("json", corpus_json())):
        assert scanner.first(data) is None, "corpus must be clean for a full-length scan"
        assert scanner.scan(data) == [], "corpus must be clean for a full-length scan"
        for method in (scanner.first, scanner.scan):
            runs = timings(lambda d=data, f=method: f(d), repeat=15, number=5)
            per, med = min(runs), statistics.median(runs)
            print(
                f"Scanner.{method.__name__} {name} 1 MiB: {MIB / per / 1e6:.0f} MB/s best, "
                f"{MIB / med / 1e6:.0f} MB/s median ({per * 1e3:.2f} ms/MiB, "
                f"{per / base:.1f}x one bytes.find pass)"
            )


if __name__ == "__main__":
    main()
