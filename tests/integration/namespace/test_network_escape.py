"""The bottle has loopback only; the sidecar socket is its one way out, and when
the sidecar dies there is none."""

from __future__ import annotations

import shlex
import socket
import sys
import threading
from pathlib import Path

import pytest
from ns_harness import Bottle

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from netprobe import DEFAULT_ROUTES, host_address, host_services

pytestmark = pytest.mark.integration

CONNECT = (
    'python3 -c "import socket,sys;s=socket.socket({fam});s.settimeout(3);'
    "s.connect(({host!r},{port}));print('CONNECTED')\""
)


def _host_loopback_service() -> tuple[socket.socket, int]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    threading.Thread(target=lambda: srv.accept(), daemon=True).start()
    return srv, srv.getsockname()[1]


def test_host_loopback_unreachable(bottle: Bottle) -> None:
    srv, port = _host_loopback_service()
    try:
        r = bottle.sh(CONNECT.format(fam="", host="127.0.0.1", port=port))
        assert "CONNECTED" not in r.stdout
    finally:
        srv.close()


def test_no_route_beyond_loopback(bottle: Bottle) -> None:
    """Without sending anything off this machine: the bottle has no default route, and
    TCP and UDP to a service on the host's own address never arrive."""
    r = bottle.sh(f"python3 -c {shlex.quote(DEFAULT_ROUTES)}")
    assert r.stdout.strip() == "none", r.stdout + r.stderr
    with host_services() as svc:
        host = host_address()
        r = bottle.sh(CONNECT.format(fam="", host=host, port=svc.port))
        assert "CONNECTED" not in r.stdout
        assert "unreachable" in r.stderr.lower()
        bottle.sh(
            'python3 -c "import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);'
            f"s.sendto(b'x',({host!r},{svc.port}));print('SENT')\""
        )
    assert svc.tcp_peers == [] and svc.udp_peers == []


def test_dns_fails(bottle: Bottle) -> None:
    r = bottle.sh("getent hosts example.com; echo rc=$?; cat /etc/resolv.conf")
    assert "rc=2" in r.stdout or "rc=1" in r.stdout


def test_proxy_variables_unset_gives_no_route(bottle: Bottle) -> None:
    r = bottle.sh(
        "unset HTTP_PROXY HTTPS_PROXY http_proxy https_proxy ALL_PROXY all_proxy; "
        "curl -sS -m 5 https://example.com -o /dev/null; echo rc=$?"
    )
    assert "rc=0" not in r.stdout
    assert "resolve" in r.stderr.lower() or "connect" in r.stderr.lower()


def test_sidecar_path_works_then_dies_closed(bottle: Bottle) -> None:
    probe = CONNECT.format(fam="", host="127.0.0.1", port=3128).replace(
        "print('CONNECTED')", "print('GOT', s.recv(10))"
    )
    assert "PONG" in bottle.sh(probe).stdout
    bottle.sidecar.kill()
    bottle.sidecar.wait()
    r = bottle.sh(probe + "; curl -sS -m 5 https://example.com; echo rc=$?")
    assert "PONG" not in r.stdout
    assert "rc=0" not in r.stdout
