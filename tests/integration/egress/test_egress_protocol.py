"""The protocol surface around the policy: only inspected HTTP(S) and WebSocket leave.

Each test speaks to the real `bot-bottle egress serve` the way a hostile agent would
(raw sockets, HTTP/2 with client-side checks off) and asserts on what the recording
upstream actually received, not only on what the proxy answered.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from egress_harness import CANARY, SECRET, Egress, curl
from egress_raw import (
    Recorder,
    h2_head,
    h2_request,
    is_closed,
    open_tunnel,
    read_until_closed,
    tls_tunnel,
    websocket,
)
from egress_upstream import Upstream, _ws_read, ws_frame

pytestmark = pytest.mark.integration

API = "api.example.test"


def _seen(up: Upstream, marker: str) -> list[str]:
    """Every request the upstream received that carries `marker` anywhere."""
    hits = []
    for r in list(up.records):
        blob = f"{r.method} {r.path} {r.headers!r}".encode() + r.body
        if marker.encode() in blob:
            hits.append(f"{r.method} {r.path}")
    return hits


def _deny_audited(eg: Egress, rule: str) -> dict[str, object]:
    return eg.wait_audit(lambda r: r.get("rule") == rule and r.get("decision") == "deny")


def _denials(eg: Egress) -> int:
    return (
        sum(1 for r in eg.audit() if r.get("decision") == "deny") if eg.audit_path.exists() else 0
    )


def _new_denial(eg: Egress, before: int, timeout: float = 10) -> dict[str, object]:
    """The first deny record written after `before` denials had been."""
    deadline = time.monotonic() + timeout
    while True:
        denials = [r for r in eg.audit() if r.get("decision") == "deny"]
        if len(denials) > before:
            return denials[before]
        assert time.monotonic() < deadline, "the refusal was not audited"
        time.sleep(0.05)


# --- 1. header fields that are invalid on some protocol ------------------------------


def _smuggle_value(port: int, marker: str) -> bytes:
    return (
        f"x\r\nContent-Length: 0\r\n\r\nGET /v1/smuggled-{marker} HTTP/1.1\r\n"
        f"Host: {API}:{port}\r\nX-M: {marker}"
    ).encode()


H2_SHAPES: dict[str, Callable[[int, str], list[tuple[bytes, bytes]]]] = {
    "crlf-value": lambda p, m: [(b"x-a", _smuggle_value(p, m))],
    "lf-value": lambda p, m: [(b"x-a", f"v\nx-injected: {m}".encode())],
    "cr-value": lambda p, m: [(b"x-a", f"v\rx-injected: {m}".encode())],
    "nul-value": lambda p, m: [(b"x-a", f"v\x00{m}".encode())],
    "leading-space": lambda p, m: [(b"x-a", f" {m}".encode())],
    "trailing-tab": lambda p, m: [(b"x-a", f"{m}\t".encode())],
    "uppercase-name": lambda p, m: [(b"X-Upper", m.encode())],
    "pseudo-among-regular": lambda p, m: [(b"x-a", m.encode()), (b":fake", m.encode())],
    "crlf-name": lambda p, m: [(f"x-a\r\nx-b: {m}".encode(), b"v")],
    "space-name": lambda p, m: [(b"x a", m.encode())],
}


@pytest.mark.parametrize("shape", sorted(H2_SHAPES))
def test_h2_invalid_fields_never_forwarded(egress: Egress, upstream: Upstream, shape: str) -> None:
    marker = f"smug{uuid.uuid4().hex[:10]}"
    before = _denials(egress)
    tls = tls_tunnel(egress, API, upstream.port, alpn=["h2"])
    assert tls.selected_alpn_protocol() == "h2"
    head = h2_head(
        API, upstream.port, f"/v1/h2-{marker}", "GET", H2_SHAPES[shape](upstream.port, marker)
    )
    res = h2_request(tls, head)
    tls.close()
    assert _seen(upstream, marker) == [], (shape, res)
    assert res.status in (None, 400, 403), res
    # Refused by us (403, rule header) or before any hook by mitmproxy or its HTTP/2
    # library (400 or a closed connection, audited when the connection ends): either way
    # the refusal is in the audit log.
    rec = _new_denial(egress, before)
    assert rec["rule"] in ("header", "protocol"), rec


@pytest.mark.parametrize("field", [":authority", ":path", ":method", ":scheme"])
def test_h2_crlf_in_pseudo_headers(egress: Egress, upstream: Upstream, field: str) -> None:
    marker = f"smug{uuid.uuid4().hex[:10]}"
    tls = tls_tunnel(egress, API, upstream.port, alpn=["h2"])
    head = h2_head(API, upstream.port, f"/v1/p-{marker}")
    head = [
        (k, v + b"\r\nx-injected: " + marker.encode()) if k.decode() == field else (k, v)
        for k, v in head
    ]
    res = h2_request(tls, head)
    tls.close()
    assert _seen(upstream, marker) == [], res


def test_lowercase_method_refused(egress: Egress, upstream: Upstream) -> None:
    marker = f"low{uuid.uuid4().hex[:10]}"
    code, body, _ = curl(egress, "-X", "get", f"https://{API}:{upstream.port}/v1/{marker}")
    assert code == 403, body
    tls = tls_tunnel(egress, API, upstream.port, alpn=["h2"])
    res = h2_request(tls, h2_head(API, upstream.port, f"/v1/{marker}", "post"))
    tls.close()
    assert res.status == 403
    assert _seen(upstream, marker) == []
    rec = _deny_audited(egress, "method")
    assert "uppercase" in str(rec["reason"])


def test_trace_refused_it_would_echo_the_injected_credential(
    egress: Egress, upstream: Upstream
) -> None:
    """A route with `auth` and no `methods` list allows every method; TRACE asks the
    upstream to echo the request back, the credential egress injected included."""
    marker = f"trace{uuid.uuid4().hex[:10]}"
    for method in ("TRACE", "TRACK"):
        code, body, _ = curl(egress, "-X", method, f"https://{API}:{upstream.port}/v1/{marker}")
        assert code == 403, body
    assert _seen(upstream, marker) == []
    rec = _deny_audited(egress, "method")
    assert "echo" in str(rec["reason"])


# --- 5. bytes DLP never saw ----------------------------------------------------------


@pytest.mark.parametrize("value", [CANARY, SECRET], ids=["canary", "credential"])
def test_h2_request_trailers_scanned(egress: Egress, upstream: Upstream, value: str) -> None:
    marker = f"trl{uuid.uuid4().hex[:10]}"
    tls = tls_tunnel(egress, API, upstream.port, alpn=["h2"])
    head = h2_head(API, upstream.port, f"/v1/{marker}", "POST")
    res = h2_request(tls, head, body=b"hello", trailers=[(b"x-trailer", value.encode())])
    tls.close()
    assert _seen(upstream, marker) == [], res
    assert res.status == 403, res


def test_h2_trailer_with_crlf_refused(egress: Egress, upstream: Upstream) -> None:
    marker = f"trl{uuid.uuid4().hex[:10]}"
    tls = tls_tunnel(egress, API, upstream.port, alpn=["h2"])
    head = h2_head(API, upstream.port, f"/v1/{marker}", "POST")
    res = h2_request(
        tls, head, body=b"hi", trailers=[(b"x-t", _smuggle_value(upstream.port, marker))]
    )
    tls.close()
    assert _seen(upstream, marker) == [], res


def test_h1_chunked_trailer_with_secret_not_forwarded(egress: Egress, upstream: Upstream) -> None:
    # mitmproxy 11 cannot forward HTTP/1.1 trailers and drops the connection; the
    # refusal must still be audited (and a mitmproxy that forwards them must scan them).
    marker = f"trl{uuid.uuid4().hex[:10]}"
    before = _denials(egress)
    tls = tls_tunnel(egress, API, upstream.port)
    tls.sendall(
        f"POST /v1/{marker} HTTP/1.1\r\nHost: {API}:{upstream.port}\r\n"
        f"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nx-t: {CANARY}\r\n\r\n".encode()
    )
    read_until_closed(tls, timeout=3)
    tls.close()
    assert _seen(upstream, marker) == []
    assert _new_denial(egress, before)["rule"] in ("protocol", "canary")


@pytest.mark.parametrize(("opcode", "kind"), [(9, "ping"), (10, "pong"), (8, "close")])
def test_websocket_control_frames_scanned(
    egress: Egress, upstream: Upstream, opcode: int, kind: str
) -> None:
    tls = websocket(egress, "api.example.test", upstream.port)
    tls.sendall(ws_frame(1, b"before", mask=b"abcd"))
    assert _ws_read(tls) == (1, b"before")
    payload = (struct.pack("!H", 1000) if opcode == 8 else b"") + CANARY.encode()
    tls.sendall(ws_frame(opcode, payload, mask=b"wxyz"))
    if opcode != 8:
        # The connection is killed: later data frames must not arrive either.
        with contextlib.suppress(OSError):
            tls.sendall(ws_frame(1, b"after", mask=b"abcd"))
    assert is_closed(tls), "the connection stayed open after a secret control frame"
    tls.close()
    rec = egress.wait_audit(lambda r: r.get("kind") == "websocket" and r.get("rule") == "canary")
    assert rec["decision"] == "deny"
    assert all(CANARY.encode() not in data for _, data in list(upstream.ws_frames))
    assert (1, b"after") not in upstream.ws_frames


def test_websocket_secret_message_kills_connection(egress: Egress, upstream: Upstream) -> None:
    tls = websocket(egress, "api.example.test", upstream.port)
    tls.sendall(ws_frame(2, f"x {SECRET}".encode(), mask=b"abcd"))
    assert is_closed(tls)
    tls.close()
    assert all(SECRET.encode() not in d for _, d in list(upstream.ws_frames))


def test_secret_in_host_name(make_egress: Callable[..., Egress], upstream: Upstream) -> None:
    # A protected value shaped like a DNS label, under a wildcard route (and the
    # upstream's `*.example.test` certificate): only DLP on the name can stop it.
    value = "hostleak-" + uuid.uuid4().hex[:16]
    leaky = f"{value}.example.test"
    eg = make_egress(
        routes=[{"host": "*.example.test"}],
        doc_extra={"hosts": {leaky: "127.0.0.1", API: "127.0.0.1"}},
        extra_env={"EGRESS_PROTECT_0": value},
    )
    before = len(upstream.records)
    code, body, _ = curl(eg, f"https://{leaky}:{upstream.port}/v1/x")
    hosts = [r.header("host") or "" for r in upstream.records[before:]]
    assert not any(value in h for h in hosts), hosts
    assert code in (0, 403), body
    rec = _deny_audited(eg, "dlp")
    assert rec["host"] == "[redacted: carries a secret]"


# --- 2 and 4. only TLS-wrapped HTTP inside a tunnel ----------------------------------


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder("127.0.0.1", reply=b"REPLY-FROM-RAW-SERVER\n").start()
    yield rec
    rec.stop()


@pytest.mark.parametrize(
    "payload",
    [b"\x00\x01raw-binary-bytes\xff\n", b"SSH-2.0-OpenSSH_9.2\r\n", b"HELO hi\r\n",
     b"GET /v1/plain HTTP/1.1\r\nHost: loop.example.test\r\n\r\n"],
    ids=["binary", "ssh", "smtp", "plaintext-http"],
)  # fmt: skip
def test_non_tls_bytes_in_connect_tunnel(
    make_egress: Callable[..., Egress], recorder: Recorder, payload: bytes
) -> None:
    # The route declares the recorder's port, so the tunnel opens and what is refused
    # is the protocol inside it (an undeclared port is refused earlier, rule `port`).
    egress = make_egress(routes=[{"host": "loop.example.test", "port": recorder.port}])
    raw, head = open_tunnel(egress, "loop.example.test", recorder.port)
    if b" 200 " in head:
        with contextlib.suppress(OSError):
            raw.sendall(payload)
        back = read_until_closed(raw, timeout=3)
        assert b"REPLY-FROM-RAW-SERVER" not in back
    raw.close()
    assert recorder.all_bytes() == b"", recorder.received
    rec = _deny_audited(egress, "protocol")
    assert rec["host"] == "loop.example.test"


def test_non_websocket_upgrade_refused(egress: Egress, upstream: Upstream) -> None:
    marker = f"upg{uuid.uuid4().hex[:10]}"
    tls = tls_tunnel(egress, API, upstream.port)
    tls.sendall(
        f"GET /v1/{marker} HTTP/1.1\r\nHost: {API}:{upstream.port}\r\n"
        "Upgrade: raw-tcp\r\nConnection: Upgrade\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = tls.recv(4096)
        if not chunk:
            break
        head += chunk
    with contextlib.suppress(OSError):
        tls.sendall(f"RAW-AFTER-UPGRADE {marker}\n".encode())
    read_until_closed(tls, timeout=2)
    tls.close()
    assert not head.startswith(b"HTTP/1.1 101"), head
    assert not any(marker.encode() in d for d in list(upstream.upgraded))
    assert _seen(upstream, marker) == []
    _deny_audited(egress, "protocol")


def _dns_query() -> bytes:
    q = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p for p in (b"exfil-data", b"example", b"com")) + b"\0"
    q += struct.pack("!HH", 1, 1)
    return struct.pack("!H", len(q)) + q


@pytest.mark.parametrize("port", [5353, 53])
def test_connect_to_dns_ports(make_egress: Callable[..., Egress], port: int) -> None:
    if port == 53 and socket.getservbyname("domain") and __import__("os").geteuid() != 0:
        pytest.fail("binding port 53 needs root (the CI runs these as root)")
    addr = f"127.0.{random.randint(1, 250)}.{random.randint(2, 250)}"
    rec = Recorder(addr, port=port, reply=b"\x00\x02ok").start()
    try:
        eg = make_egress(
            routes=[{"host": "dns.example.test", "port": port}],
            doc_extra={"hosts": {"dns.example.test": addr}, "ssrf_ip_allowlist": [f"{addr}/32"]},
        )
        raw, head = open_tunnel(eg, "dns.example.test", port)
        if b" 200 " in head:
            with contextlib.suppress(OSError):
                raw.sendall(_dns_query())
            read_until_closed(raw, timeout=3)
        raw.close()
        assert rec.all_bytes() == b"", rec.received
        _deny_audited(eg, "protocol")
    finally:
        rec.stop()


def test_h2_body_without_content_length_is_framed(egress: Egress, upstream: Upstream) -> None:
    # Found by the hypothesis client: mitmproxy wrote such a body to an HTTP/1.1 upstream
    # with no framing, so the upstream read it as a second request.
    marker = f"cl{uuid.uuid4().hex[:10]}"
    smuggled = f"GET /v2/smuggled-{marker} HTTP/1.1\r\nHost: {API}\r\n\r\n".encode()
    tls = tls_tunnel(egress, API, upstream.port, alpn=["h2"])
    res = h2_request(tls, h2_head(API, upstream.port, f"/v1/{marker}", "POST"), body=smuggled)
    tls.close()
    assert res.status == 200, res
    time.sleep(0.3)  # the upstream would handle a smuggled request after the first
    seen = [f"{r.method} {r.path}" for r in list(upstream.records) if marker in r.path]
    assert seen == [f"POST /v1/{marker}"], seen
    assert upstream.last().body == smuggled


def test_h2_clean_trailers_do_not_break_the_request(egress: Egress, upstream: Upstream) -> None:
    marker = f"ct{uuid.uuid4().hex[:10]}"
    tls = tls_tunnel(egress, API, upstream.port, alpn=["h2"])
    head = h2_head(API, upstream.port, f"/v1/{marker}", "POST")
    res = h2_request(tls, head, body=b"hello", trailers=[(b"x-checksum", b"abc")])
    tls.close()
    got = [r for r in list(upstream.records) if marker in r.path]
    assert res.status == 200 and got and got[0].body == b"hello", (res, got)
