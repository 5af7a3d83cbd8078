"""Routes have a scheme and a port: a credential never leaves in cleartext or to
another port of an allowed host.

A plaintext recorder on loopback stands in for "some other service on the allowed
host" (SMTP on :25, a debug port): it records every byte it receives, so the test
asserts on what actually arrived, not on what the proxy said.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from egress_harness import SECRET, Egress, curl
from egress_upstream import Upstream

pytestmark = pytest.mark.integration

HOSTS = {"api.example.test": "127.0.0.1", "plain.example.test": "127.0.0.1"}


@dataclass
class Recorder:
    port: int
    received: list[bytes] = field(default_factory=list)

    def everything(self) -> bytes:
        return b"".join(self.received)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    srv = socket.create_server(("127.0.0.1", 0))
    rec = Recorder(srv.getsockname()[1])

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                except OSError:
                    pass
                rec.received.append(data)
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")

    threading.Thread(target=serve, daemon=True).start()
    yield rec
    srv.close()


def _routes(up: Upstream, rec: Recorder) -> list[dict[str, object]]:
    return [
        {
            "host": "api.example.test",
            "port": up.port,
            "auth": {"scheme": "Bearer", "slot": "EGRESS_TOKEN_0"},
        },
        {"host": "plain.example.test", "scheme": "http", "port": rec.port},
    ]


def test_cleartext_to_other_port_of_authenticated_host_is_refused(
    make_egress: Callable[..., Egress], upstream: Upstream, recorder: Recorder
) -> None:
    eg = make_egress(_routes(upstream, recorder), {"hosts": HOSTS})
    code, body, _ = curl(eg, f"http://api.example.test:{recorder.port}/v1/x")
    assert code == 403, body
    assert f"not http to port {recorder.port}" in body and "\nto allow: " in body
    rec = eg.wait_audit(lambda r: r.get("rule") == "port" and r.get("decision") == "deny")
    assert rec["status"] == 403
    assert SECRET.encode() not in recorder.everything()
    assert recorder.received == []


def test_cleartext_to_declared_tls_port_is_refused(
    make_egress: Callable[..., Egress], upstream: Upstream, recorder: Recorder
) -> None:
    eg = make_egress(_routes(upstream, recorder), {"hosts": HOSTS})
    seen = len(upstream.records)
    code, body, _ = curl(eg, f"http://api.example.test:{upstream.port}/v1/x")
    assert code == 403 and "not http to port" in body, body
    assert upstream.records[seen:] == []


def test_connect_to_undeclared_port_is_refused(
    make_egress: Callable[..., Egress], upstream: Upstream, recorder: Recorder
) -> None:
    eg = make_egress(_routes(upstream, recorder), {"hosts": HOSTS})
    code, _, err = curl(eg, f"https://api.example.test:{recorder.port}/v1/x")
    assert code in (0, 403) and "403" in err, err
    rec = eg.wait_audit(lambda r: r.get("rule") == "port")
    assert rec["host"] == "api.example.test" and rec["decision"] == "deny"
    assert recorder.received == []


def test_declared_http_route_is_forwarded_without_credentials(
    make_egress: Callable[..., Egress], upstream: Upstream, recorder: Recorder
) -> None:
    eg = make_egress(_routes(upstream, recorder), {"hosts": HOSTS})
    code, body, _ = curl(
        eg, "-H", "Authorization: Bearer agent-held", f"http://plain.example.test:{recorder.port}/x"
    )
    assert (code, body) == (200, "ok")
    got = recorder.everything()
    assert got.startswith(b"GET /x HTTP/1.1") and b"authorization" not in got.lower()


def test_https_on_declared_port_still_gets_credential(
    make_egress: Callable[..., Egress], upstream: Upstream, recorder: Recorder
) -> None:
    eg = make_egress(_routes(upstream, recorder), {"hosts": HOSTS})
    code, body, _ = curl(eg, f"https://api.example.test:{upstream.port}/v1/ok")
    assert code == 200, body
    assert upstream.last().header("authorization") == f"Bearer {SECRET}"
