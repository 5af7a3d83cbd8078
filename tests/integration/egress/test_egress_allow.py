"""An allowed request arrives with the sidecar's credential and without the agent's."""

from __future__ import annotations

import ssl
import subprocess

import httpx
import pytest
from egress_harness import SECRET, Egress
from egress_upstream import Upstream

pytestmark = pytest.mark.integration


def client(eg: Egress, **kw: object) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=str(eg.ca))
    return httpx.Client(proxy=eg.proxy, verify=ctx, timeout=20, **kw)  # type: ignore[arg-type]


def test_allowed_request_gets_injected_bearer(egress: Egress, upstream: Upstream) -> None:
    url = f"https://api.example.test:{upstream.port}/v1/models?x=1"
    with client(egress) as c:
        r = c.get(
            url,
            headers={
                "authorization": "Bearer agent-placeholder",
                "x-api-key": "agent-key",
                "cookie": "s=1",
            },
        )
    assert r.status_code == 200, r.text
    got = upstream.last()
    assert got.path == "/v1/models?x=1"
    assert got.header("authorization") == f"Bearer {SECRET}"
    assert got.header("x-api-key") is None
    assert got.header("cookie") is None
    rec = egress.wait_audit(lambda r: r.get("path") == "/v1/models")
    assert rec["decision"] == "allow" and rec["status"] == 200 and rec["host"] == "api.example.test"
    assert rec["bytes_in"] > 0 and rec["route"].startswith("api.example.test")


def test_header_scheme_injection_with_curl(egress: Egress, upstream: Upstream) -> None:
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "--proxy",
            egress.proxy,
            "--cacert",
            str(egress.ca),
            "-H",
            "x-api-key: agent-fake",
            "-H",
            "authorization: Basic Zm9vOmJhcg==",
            "-d",
            "hello",
            f"https://other.example.test:{upstream.port}/anything",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    got = upstream.last()
    assert got.header("x-api-key") == SECRET + "-two"
    assert got.header("authorization") is None
    assert got.body == b"hello"
