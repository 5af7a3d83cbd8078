"""HTTPS to a host with no route: the CONNECT is accepted and TLS-terminated with the
bottle's CA, and every request on it is answered with the readable 403 plain HTTP gets.
Nothing is dialled: a recording TCP server stands where the host resolves (the `hosts`
map points it there) and must see no connection at all. Every trick on such a tunnel
(HTTP/2, WebSocket upgrade, Host/SNI naming an allowed host, plaintext) stays denied;
undeclared ports and passthrough routes keep their refusal at CONNECT."""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from egress_harness import CANARY, DEFAULT_ROUTES, Egress, curl
from egress_raw import h2_head, h2_request, open_tunnel, read_until_closed, tls_tunnel
from egress_upstream import Upstream

pytestmark = pytest.mark.integration

NOPE = "nope.example.test"


@pytest.fixture
def recorder() -> Iterator[Any]:
    from egress_raw import Recorder

    rec = Recorder("127.0.0.1").start()
    yield rec
    rec.stop()


@pytest.fixture
def eg(make_egress: Callable[..., Egress], upstream: Upstream, recorder: Any) -> Egress:
    """Routes as usual plus one on the recorder's port (so that port is declared); the
    undeclared host resolves to the recorder, so any dial to it would be recorded."""
    hosts = {
        "api.example.test": "127.0.0.1",
        "pass.example.test": "127.0.0.1",
        NOPE: "127.0.0.1",
    }
    routes = [*DEFAULT_ROUTES, {"host": "declared.example.test", "port": recorder.port}]
    return make_egress(routes, doc_extra={"hosts": hosts})


def _readable(body: str, method: str, target: str) -> str:
    assert body.startswith(f"bot-bottle egress denied {method} {target}"), body
    hint = body.split("\nto allow: ", 1)[1]
    assert f"host: {NOPE}" in hint and "bottles.test-bottle.egress.routes" in hint, body
    return hint


def test_https_to_undeclared_host_gets_the_403_body(eg: Egress, recorder: Any) -> None:
    code, body, err = curl(eg, f"https://{NOPE}:{recorder.port}/pkg/simple/x?q=1")
    assert code == 403, (body, err)
    hint = _readable(body, "GET", f"{NOPE}/pkg/simple/x")
    assert f"port: {recorder.port}" in hint, hint
    rec = eg.wait_audit(lambda r: r.get("host") == NOPE and r.get("decision") == "deny")
    assert rec["rule"] == "route" and rec["status"] == 403 and rec["path"] == "/pkg/simple/x"
    assert recorder.received == [], "nothing may be dialled for an undeclared host"


def test_every_request_on_the_tunnel_is_denied(eg: Egress, recorder: Any) -> None:
    tls = tls_tunnel(eg, NOPE, recorder.port)
    for method, path in (("GET", "/a"), ("POST", "/b/c"), ("DELETE", "/")):
        tls.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: {NOPE}:{recorder.port}\r\n"
            "content-length: 2\r\n\r\nhi".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += tls.recv(1)
        assert head.startswith(b"HTTP/1.1 403"), head
        n = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        body = b""
        while len(body) < n:
            body += tls.recv(n - len(body))
        _readable(body.decode(), method, f"{NOPE}{path}")
    tls.close()
    assert recorder.received == []


def test_http2_on_the_tunnel_is_denied(eg: Egress, recorder: Any) -> None:
    code, body, err = curl(eg, "--http2", f"https://{NOPE}:{recorder.port}/h2")
    assert code == 403, (body, err)
    _readable(body, "GET", f"{NOPE}/h2")
    tls = tls_tunnel(eg, NOPE, recorder.port, alpn=["h2"])
    assert tls.selected_alpn_protocol() == "h2"
    res = h2_request(tls, h2_head(NOPE, recorder.port, "/raw-h2", "POST"), body=b"x" * 100)
    assert res.status == 403 and b"to allow: " in res.body, res
    assert recorder.received == []


def test_websocket_upgrade_on_the_tunnel_is_denied(eg: Egress, recorder: Any) -> None:
    tls = tls_tunnel(eg, NOPE, recorder.port)
    tls.sendall(
        f"GET /ws HTTP/1.1\r\nHost: {NOPE}:{recorder.port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    out = read_until_closed(tls, timeout=2)
    assert out.startswith(b"HTTP/1.1 403"), out
    assert b"101" not in out.split(b"\r\n", 1)[0]
    assert recorder.received == []


def test_host_or_sni_naming_an_allowed_host_is_still_denied(
    eg: Egress, recorder: Any, upstream: Upstream
) -> None:
    """A tunnel opened for an undeclared host cannot reach an allowed one by naming it
    in Host or SNI (domain fronting the other way round)."""
    before = len(upstream.records)
    code, body, _ = curl(
        eg, "-H", f"Host: api.example.test:{upstream.port}", f"https://{NOPE}:{upstream.port}/v1/x"
    )
    assert code == 403 and "bot-bottle egress denied" in body, body
    raw, head = open_tunnel(eg, NOPE, upstream.port)
    assert b" 200 " in head
    ctx = ssl.create_default_context(cafile=str(eg.ca))
    tls = ctx.wrap_socket(raw, server_hostname="api.example.test")
    tls.sendall(f"GET /v1/x HTTP/1.1\r\nHost: api.example.test:{upstream.port}\r\n\r\n".encode())
    out = read_until_closed(tls, timeout=2)
    assert out.startswith(b"HTTP/1.1 403"), out
    assert len(upstream.records) == before, "nothing may reach the allowed host's upstream"


def test_dlp_still_applies_and_is_audited(eg: Egress, recorder: Any) -> None:
    code, body, _ = curl(eg, f"https://{NOPE}:{recorder.port}/x?k={CANARY}")
    assert code == 403 and "exfiltration attempt" in body, body
    rec = eg.wait_audit(lambda r: r.get("rule") == "canary")
    assert rec["fingerprint"] and CANARY not in str(rec)
    assert recorder.received == []


def test_undeclared_port_still_refused_at_connect(eg: Egress, recorder: Any) -> None:
    """Only 443 and the ports the bottle's https routes declare get a readable denial;
    any other port is refused before TLS, as is a declared host's undeclared port."""
    spare = socket.socket()
    spare.bind(("127.0.0.1", 0))
    port = spare.getsockname()[1]
    spare.close()
    code, _, err = curl(eg, f"https://{NOPE}:{port}/x")
    assert code in (0, 403) and "403" in err, err
    rec = eg.wait_audit(lambda r: r.get("host") == NOPE and r.get("rule") == "connect")
    assert str(port) in rec["reason"]
    code, _, err = curl(eg, f"https://api.example.test:{recorder.port}/v1/x")
    assert code in (0, 403) and "403" in err, err
    eg.wait_audit(lambda r: r.get("rule") == "port")
    assert recorder.received == []


def test_plaintext_in_the_tunnel_is_refused(eg: Egress, recorder: Any) -> None:
    raw, head = open_tunnel(eg, NOPE, recorder.port)
    assert b" 200 " in head, head
    raw.sendall(f"GET /x HTTP/1.1\r\nHost: {NOPE}\r\n\r\n".encode())
    out = read_until_closed(raw, timeout=3)
    assert b"HTTP/1.1" not in out, out
    eg.wait_audit(lambda r: r.get("host") == NOPE and r.get("rule") == "protocol")
    assert recorder.received == []


def test_a_tunnel_closed_before_any_request_is_audited_as_the_route(
    eg: Egress, recorder: Any
) -> None:
    """A client that does not trust the bottle's CA never sends a request; the denial
    is still recorded against the host, so `logs --denied` and `suggest` see it."""
    raw, head = open_tunnel(eg, NOPE, recorder.port)
    assert b" 200 " in head
    ctx = ssl.create_default_context()  # the system store: not the bottle's CA
    with pytest.raises(ssl.SSLError):
        ctx.wrap_socket(raw, server_hostname=NOPE)
    raw.close()
    rec = eg.wait_audit(lambda r: r.get("host") == NOPE and r.get("kind") == "connection")
    assert rec["rule"] == "route" and rec["decision"] == "deny"
    assert recorder.received == []


def test_passthrough_route_still_relayed_undecrypted(eg: Egress, upstream: Upstream) -> None:
    code, body, _ = curl(
        eg, "--cacert", str(upstream.ca_path), f"https://pass.example.test:{upstream.port}/p"
    )
    assert code == 200, body


def test_ip_literal_without_route_is_not_dialled(eg: Egress, recorder: Any) -> None:
    """SSRF is not weakened: a CONNECT to a bare address gets the readable denial and
    the address (here a live recorder on loopback) is never dialled."""
    raw, head = open_tunnel(eg, "127.0.0.1", recorder.port)
    assert b" 200 " in head, head
    tls = ssl.create_default_context(cafile=str(eg.ca)).wrap_socket(
        raw, server_hostname="127.0.0.1"
    )
    tls.sendall(
        f"GET /latest/meta-data HTTP/1.1\r\nHost: 127.0.0.1:{recorder.port}\r\n\r\n".encode()
    )
    out = read_until_closed(tls, timeout=2)
    assert out.startswith(b"HTTP/1.1 403") and b"host 127.0.0.1 is not in the egress" in out, out
    assert recorder.received == []


def test_a_route_added_while_the_tunnel_is_open_applies_to_its_next_request(
    eg: Egress, upstream: Upstream
) -> None:
    """The tunnel is not a verdict: each request is checked against the routes in force,
    so a route granted (the routes file reloaded) serves the agent's next request."""
    before = len(upstream.records)
    tls = tls_tunnel(eg, NOPE, upstream.port)
    ask = f"GET /after HTTP/1.1\r\nHost: {NOPE}:{upstream.port}\r\n\r\n".encode()
    tls.sendall(ask)
    head = b""
    while b"\r\n\r\n" not in head:
        head += tls.recv(1)
    assert head.startswith(b"HTTP/1.1 403"), head
    n = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while n > 0:
        n -= len(tls.recv(n))
    doc = json.loads(eg.routes_path.read_text())
    doc["routes"].append({"host": NOPE, "port": upstream.port})
    eg.write_routes(doc)
    time.sleep(0.7)  # the routes file is re-checked at most every 0.5 s, on use
    tls.sendall(ask)
    out = read_until_closed(tls, timeout=3)
    assert out.startswith(b"HTTP/1.1 200"), out
    assert [r.path for r in upstream.records[before:]] == ["/after"]
