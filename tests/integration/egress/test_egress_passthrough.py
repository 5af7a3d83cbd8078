"""A tls_passthrough route is tunnelled, not inspected: the client's TLS session ends at
the upstream (it verifies with the upstream's CA, and egress's CA cannot stand in), the
agent's headers arrive untouched, and the tunnel is gated and audited by host."""

from __future__ import annotations

import subprocess

import pytest
from egress_harness import Egress
from egress_upstream import Upstream

pytestmark = pytest.mark.integration


def curl_with(eg: Egress, cafile: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "-sS", "--proxy", eg.proxy, "--cacert", cafile, "-w", "\n%{http_code}",
         "-H", "authorization: Bearer agent-own", url],
        capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def test_passthrough_is_end_to_end_tls(egress: Egress, upstream: Upstream) -> None:
    url = f"https://pass.example.test:{upstream.port}/v1/through"
    out = curl_with(egress, str(upstream.ca_path), url)
    assert out.stdout.endswith("\n200"), out.stderr
    got = upstream.last()
    assert got.path == "/v1/through"
    # Not decrypted, so nothing was stripped or injected.
    assert got.header("authorization") == "Bearer agent-own"
    rec = egress.wait_audit(lambda r: r.get("host") == "pass.example.test")
    assert rec["decision"] == "allow"


def test_egress_ca_cannot_impersonate_a_passthrough_host(
    egress: Egress, upstream: Upstream
) -> None:
    out = curl_with(egress, str(egress.ca), f"https://pass.example.test:{upstream.port}/v1/x")
    assert out.returncode != 0 and "certificate" in out.stderr.lower(), out.stderr
