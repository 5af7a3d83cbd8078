"""Nothing of a bottle's egress is reachable except through the bottle's Unix socket.

mitmproxy listens on a loopback TCP port behind the socket's relay; any local user can
dial loopback. A direct connection (as the test's own user, and as `nobody`) must be
refused before any request is read, so no credential is ever injected for it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from egress_harness import SECRET, Egress
from egress_upstream import Upstream

pytestmark = pytest.mark.integration


def listening_ports(pid: int) -> list[int]:
    """Loopback TCP ports process `pid` listens on (from /proc, no tools needed)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            if parts[3] == "0A" and parts[9] in inodes:  # 0A = LISTEN
                ports.append(int(parts[1].rsplit(":", 1)[1], 16))
    return ports


def curl_proxy(proxy: str, ca: Path, url: str, *pre: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*pre, "curl", "-sS", "--max-time", "10", "--proxy", proxy, "--cacert", str(ca),
         "-w", "\n%{http_code}", url],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip


@pytest.fixture
def unix_egress(make_egress: Callable[..., Egress]) -> Egress:
    sock_path = os.path.join(tempfile.mkdtemp(prefix="bbeg"), "egress.sock")
    return make_egress(listen=f"unix:{sock_path}")


def test_direct_tcp_is_refused(unix_egress: Egress, upstream: Upstream) -> None:
    eg = unix_egress
    ports = listening_ports(eg.proc.pid)
    assert ports, "the egress should listen on a loopback port behind its relay"
    url = f"https://api.example.test:{upstream.port}/v1/local-user"
    sock = eg.address.removeprefix("unix:")
    ok = subprocess.run(
        ["curl", "-sS", "--unix-socket", sock, "--proxy", "http://localhost", "--cacert",
         str(eg.ca), url], capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert '"ok": true' in ok.stdout, ok.stderr
    got = upstream.last()
    assert got.path == "/v1/local-user" and got.header("authorization") == f"Bearer {SECRET}"
    before = len(upstream.records)
    for port in ports:
        out = curl_proxy(f"http://127.0.0.1:{port}", eg.ca, url)
        assert not out.stdout.endswith("\n200"), out.stdout
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.settimeout(5)
            s.sendall(f"GET http://api.example.test:{upstream.port}/v1/x HTTP/1.1\r\n"
                      f"Host: api.example.test\r\n\r\n".encode())  # fmt: skip
            try:
                answer = s.recv(4096)
            except ConnectionResetError:
                answer = b""
            assert answer == b"", answer
    assert len(upstream.records) == before
    rec = eg.wait_audit(lambda r: r.get("rule") == "local-client")
    assert rec["decision"] == "deny"


def test_other_user_is_refused(unix_egress: Egress, upstream: Upstream) -> None:
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.fail("this test switches to `nobody` with setpriv: run it as root (CI does)")
    eg = unix_egress
    # `nobody` must be able to read the CA, or curl fails before it dials anything.
    shared = Path(tempfile.mkdtemp(prefix="bbca"))
    shared.chmod(0o755)
    ca = shared / "ca.pem"
    shutil.copy(eg.ca, ca)
    ca.chmod(0o644)
    before = len(upstream.records)
    for port in listening_ports(eg.proc.pid):
        out = curl_proxy(
            f"http://127.0.0.1:{port}", ca, f"https://api.example.test:{upstream.port}/v1/x",
            "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
        )  # fmt: skip
        assert not out.stdout.endswith("\n200"), out.stdout
        assert (
            "Proxy CONNECT aborted" in out.stderr
            or "Recv failure" in out.stderr
            or ("Empty reply" in out.stderr)
        ), out.stderr
    assert len(upstream.records) == before


def test_warm_zygote_sidecar_is_only_reachable_through_its_socket(
    tmp_path: Path, upstream: Upstream
) -> None:
    """The warm path forks the sidecar from a pre-imported zygote: same guarantee."""
    import json
    import sys

    from egress_harness import DEFAULT_ROUTES, PROTECTED, routes_doc

    from bot_bottle.sidecars.egress.request import EgressRequest
    from bot_bottle.sidecars.egress.zygote import request_egress
    from bot_bottle.sidecars.process import kill_group

    short = Path(tempfile.mkdtemp(prefix="bbz"))
    zsock = short / "zygote.sock"
    zygote = subprocess.Popen(
        [sys.executable, "-m", "bot_bottle.sidecars.egress.zygote", str(zsock)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        cwd=str(Path(__file__).resolve().parents[3]), start_new_session=True,
    )  # fmt: skip
    try:
        assert zygote.stdout is not None and zygote.stdout.readline().startswith("READY")
        routes = tmp_path / "routes.json"
        routes.write_text(json.dumps(routes_doc(upstream, DEFAULT_ROUTES)))
        req = EgressRequest(
            routes=routes, socket=short / "egress.sock", audit_log=tmp_path / "audit.jsonl",
            confdir=tmp_path / "conf", log=tmp_path / "egress.log",
            env={"EGRESS_TOKEN_0": SECRET, "EGRESS_TOKEN_1": SECRET, "EGRESS_PROTECT_0": PROTECTED},
        )  # fmt: skip
        handle = request_egress(zsock, req)
        try:
            ca = tmp_path / "conf" / "mitmproxy-ca-cert.pem"
            url = f"https://api.example.test:{upstream.port}/v1/warm-user"
            ok = subprocess.run(
                ["curl", "-sS", "--unix-socket", str(req.socket), "--proxy", "http://localhost",
                 "--cacert", str(ca), url], capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            assert '"ok": true' in ok.stdout, ok.stderr
            ports = listening_ports(handle.pid)
            assert ports
            before = len(upstream.records)
            for port in ports:
                out = curl_proxy(f"http://127.0.0.1:{port}", ca, url)
                assert not out.stdout.endswith("\n200"), out.stdout
            assert len(upstream.records) == before
        finally:
            kill_group(handle.pid)
    finally:
        os.killpg(zygote.pid, 15)
        zygote.wait(10)
