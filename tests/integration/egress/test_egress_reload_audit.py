"""Hot reload under load, refusal of an invalid file, and `logs --verify` on tampering."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import httpx
import pytest
from egress_harness import DEFAULT_ROUTES, Egress, routes_doc
from egress_upstream import Upstream

pytestmark = pytest.mark.integration


def test_hot_reload_under_load(make_egress: Callable[..., Egress], upstream: Upstream) -> None:
    eg = make_egress()
    url = f"https://api.example.test:{upstream.port}/v1/load"
    results: list[tuple[float, int]] = []
    errors: list[str] = []
    stop = threading.Event()

    def loop() -> None:
        ctx = ssl.create_default_context(cafile=str(eg.ca))
        with httpx.Client(proxy=eg.proxy, verify=ctx, timeout=20) as c:
            while not stop.is_set():
                try:
                    results.append((time.monotonic(), c.get(url).status_code))
                except httpx.HTTPError as e:
                    errors.append(repr(e))

    threads = [threading.Thread(target=loop) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    # New policy: /v1 no longer allowed on api.example.test.
    routes = [dict(DEFAULT_ROUTES[0], paths=["/v2"]), *DEFAULT_ROUTES[1:]]
    changed = time.monotonic()
    eg.write_routes(routes_doc(upstream, routes))
    eg.wait_audit(lambda r: r.get("rule") == "reload" and r.get("decision") == "allow")
    applied = time.monotonic()
    time.sleep(1.0)
    eg.write_routes({"version": 1, "routes": [{"host": ""}]})
    refused = eg.wait_audit(lambda r: r.get("rule") == "reload" and r.get("decision") == "deny")
    time.sleep(0.7)
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert "needs a host" in refused["reason"]
    assert any("reload refused" in line for line in eg.stderr)
    assert all(code == 200 for ts, code in results if ts < changed)
    after = [code for ts, code in results if ts > applied + 0.1]
    assert after and all(code == 403 for code in after), "the old routes stay after a refusal"
    assert len(results) > 20


def test_logs_verify_detects_tampering(egress: Egress, upstream: Upstream) -> None:
    ctx = ssl.create_default_context(cafile=str(egress.ca))
    with httpx.Client(proxy=egress.proxy, verify=ctx, timeout=20) as c:
        for i in range(3):
            c.get(f"https://api.example.test:{upstream.port}/v1/n{i}")
        c.get(f"https://api.example.test:{upstream.port}/v9/denied")
    egress.wait_audit(lambda r: r.get("path") == "/v9/denied")
    egress.wait_audit(lambda r: r.get("path") == "/v1/n2")

    def logs(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot_bottle", "logs", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    path = str(egress.audit_path)
    ok = logs("--file", path, "--verify")
    assert ok.returncode == 0, ok.stderr
    shown = logs("--file", path, "--denied")
    assert "/v9/denied" in shown.stdout and "/v1/n0" not in shown.stdout
    as_json = logs("--file", path, "--json")
    assert all(json.loads(x) for x in as_json.stdout.splitlines())

    lines = egress.audit_path.read_text().splitlines()
    rec = json.loads(lines[1])
    rec["decision"] = "allow" if rec["decision"] == "deny" else "deny"
    lines[1] = json.dumps(rec, separators=(",", ":"))
    tampered = egress.tmp / "tampered.jsonl"
    tampered.write_text("\n".join(lines) + "\n")
    bad = logs("--file", str(tampered), "--verify")
    assert bad.returncode == 1 and "line 3" in bad.stderr
