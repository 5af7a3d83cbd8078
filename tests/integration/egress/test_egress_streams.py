"""SSE streams incrementally; HTTP/2 and WebSockets pass; a Unix-socket listener works."""

from __future__ import annotations

import os
import ssl
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from egress_harness import CANARY, SECRET, Egress
from egress_raw import websocket
from egress_upstream import Upstream, _ws_read, ws_frame

pytestmark = pytest.mark.integration


def _ctx(eg: Egress) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(eg.ca))


def test_sse_arrives_before_the_stream_ends(egress: Egress, upstream: Upstream) -> None:
    upstream.sse_seen_first.clear()
    upstream.sse_log.clear()
    url = f"https://api.example.test:{upstream.port}/sse"
    events = []
    with (
        httpx.Client(proxy=egress.proxy, verify=_ctx(egress), timeout=30) as c,
        c.stream("GET", url) as r,
    ):
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(line[6:])
                if line == "data: first":
                    # The upstream holds the rest until we have seen this one.
                    assert "sent-last" not in upstream.sse_log
                    upstream.sse_seen_first.set()
    assert events[0] == "first" and events[-1] == "last"
    assert upstream.sse_log == ["sent-first", "released", "sent-last"]


def test_http2_between_agent_and_proxy(egress: Egress, upstream: Upstream) -> None:
    # curl offers h2 first (httpx offers http/1.1 first, and the proxy honours the order).
    base = f"https://api.example.test:{upstream.port}"
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "--http2",
            "--proxy",
            egress.proxy,
            "--cacert",
            str(egress.ca),
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}\n",
            "-H",
            "authorization: Bearer placeholder",
            "-d",
            "x" * 1000,
            f"{base}/v1/h2",
            "--next",
            "--http2",
            "--proxy",
            egress.proxy,
            "--cacert",
            str(egress.ca),
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}\n",
            f"{base}/v2/no",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.stdout.split("\n")[:2] == ["2 200", "2 403"], out.stderr
    got = next(r for r in reversed(upstream.records) if r.path == "/v1/h2")
    assert got.header("authorization") == f"Bearer {SECRET}" and len(got.body) == 1000


def test_websocket_echo_and_dlp(egress: Egress, upstream: Upstream) -> None:
    tls = websocket(egress, "api.example.test", upstream.port)
    tls.sendall(ws_frame(1, b"hello bottle", mask=b"abcd"))
    assert _ws_read(tls) == (1, b"hello bottle")
    tls.sendall(ws_frame(1, f"creds {CANARY}".encode(), mask=b"abcd"))
    frame = _ws_read(tls)
    assert frame is None or frame[0] == 8 or CANARY.encode() not in frame[1]
    rec = egress.wait_audit(lambda r: r.get("kind") == "websocket")
    assert rec["rule"] == "canary" and rec["decision"] == "deny"
    tls.close()


def test_unix_socket_listener(
    make_egress: Callable[..., Egress], upstream: Upstream, tmp_path: Path
) -> None:
    # Unix socket paths are limited to ~108 bytes, so not under pytest's deep tmp_path.
    sock_path = os.path.join(tempfile.mkdtemp(prefix="bbeg"), "egress.sock")
    eg = make_egress(listen=f"unix:{sock_path}")
    assert eg.address == f"unix:{sock_path}"
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "--unix-socket",
            sock_path,
            "--cacert",
            str(eg.ca),
            "--proxy",
            "http://localhost",
            f"https://api.example.test:{upstream.port}/v1/u",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0 and '"ok": true' in out.stdout, out.stderr
