"""Hypothesis drives raw HTTP/1.1 and HTTP/2 clients at the real egress with malformed
framing and header bytes (CL+TE, duplicate Content-Length, obs-fold, bare LF, NUL, CR/LF
in HTTP/2 values, uppercase and pseudo names). Whatever the proxy answers, the upstream
must never receive a request the policy would deny: a smuggled second request, a
forbidden path or method, a field that is invalid on some protocol, or a secret.
"""

from __future__ import annotations

import ssl
import time

import pytest
from egress_harness import CANARY, DEFAULT_ROUTES, SECRET, Egress
from egress_raw import h2_head, h2_request, tls_tunnel
from egress_upstream import Received, Upstream
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot_bottle.policy.egress_policy import EgressPolicy
from bot_bottle.policy.http_syntax import check_fields, check_method
from bot_bottle.policy.route import decide_route

pytestmark = pytest.mark.integration

API = "api.example.test"
FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

INJECTED = f"Bearer {SECRET}"
_SMUGGLED = f"GET /v2/evil HTTP/1.1\r\nHost: {API}\r\n\r\n"
_POLICY = EgressPolicy.from_json(
    __import__("json").dumps({"version": 1, "bottle": "f", "routes": DEFAULT_ROUTES})
)


def violations(records: list[Received]) -> list[str]:
    """Upstream records the policy would have denied."""
    bad = []
    for r in records:
        why = []
        if not check_method(r.method.encode("latin-1")).allow:
            why.append("method")
        host = (r.header("host") or "").rpartition(":")[0] or (r.header("host") or "")
        if not decide_route(_POLICY.routes, r.method, host, r.path).decision.allow:
            why.append("route")
        fields = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in r.headers]
        if not check_fields(fields, http2=False).allow:
            why.append("field")
        # The sidecar's own injected credential is the one place its value may appear.
        agent = [(k, v) for k, v in r.headers if (k.lower(), v) != ("authorization", INJECTED)]
        blob = repr(agent).encode() + r.body + r.path.encode()
        if CANARY.encode() in blob or SECRET.encode() in blob:
            why.append("secret")
        if why:
            bad.append(f"{why} {r.method} {r.path} {r.headers!r}")
    return bad


# --- HTTP/1.1 ----------------------------------------------------------------------------

_names = st.one_of(
    st.sampled_from([b"content-length", b"transfer-encoding", b"Transfer-Encoding", b"host",
                     b"x-a", b"X-A", b"upgrade", b"connection", b"x-leak"]),
    st.binary(min_size=0, max_size=8),
)  # fmt: skip
_values = st.one_of(
    st.sampled_from([b"0", b"5", b"44", b"chunked", b" chunked", b"chunked, identity",
                     b"gzip, chunked", b"Chunked", b"x\r\n y", b"a\nb", b"a\x00b", b"a\rb",
                     b"websocket", b"h2c", b"keep-alive, Upgrade", CANARY.encode(),
                     b"v\r\n\r\n" + _SMUGGLED.encode()]),
    st.binary(max_size=12),
)  # fmt: skip
_bodies = st.sampled_from(
    [b"", b"hello", b"0\r\n\r\n" + _SMUGGLED.encode(), _SMUGGLED.encode(),
     b"5\r\nhello\r\n0\r\n\r\n" + _SMUGGLED.encode()]
)  # fmt: skip


@st.composite
def h1_requests(draw: st.DrawFn, port: int) -> bytes:
    method = draw(st.sampled_from([b"GET", b"POST", b"get", b"G\x00T", b"POST "]))
    path = draw(st.sampled_from([b"/v1/fz", b"/v1/fz?q=1", b"/v2/no", b"/v1/a\x00b"]))
    eol = draw(st.sampled_from([b"\r\n", b"\n"]))
    lines = [method + b" " + path + b" HTTP/1.1", f"Host: {API}:{port}".encode()]
    for name, value in draw(st.lists(st.tuples(_names, _values), max_size=5)):
        sep = draw(st.sampled_from([b": ", b":", b" : ", b":\t"]))
        lines.append(name + sep + value)
    head = draw(st.sampled_from([b"\r\n", eol])).join(lines) + b"\r\n\r\n"
    return head + draw(_bodies)


def _exchange(tls: ssl.SSLSocket, data: bytes) -> bytes:
    out = b""
    try:
        tls.sendall(data)
        tls.settimeout(3)
        while chunk := tls.recv(65536):
            out += chunk
            tls.settimeout(0.2)
    except (TimeoutError, OSError):
        pass
    return out


def test_h1_malformed_framing(egress: Egress, upstream: Upstream) -> None:
    start = len(upstream.records)

    def req(*lines: bytes, body: bytes = b"") -> bytes:
        host = f"Host: {API}:{upstream.port}".encode()
        return b"\r\n".join([b"POST /v1/fz HTTP/1.1", host, *lines]) + b"\r\n\r\n" + body

    smuggled = _SMUGGLED.encode()

    @FUZZ
    @example(
        data=req(b"Content-Length: 4", b"Transfer-Encoding: chunked", body=b"0\r\n\r\n" + smuggled)
    )  # CL.TE
    @example(data=req(b"Content-Length: 0", b"Content-Length: 49", body=smuggled))
    @example(
        data=req(
            b"Transfer-Encoding: chunked",
            b"Transfer-Encoding: identity",
            body=b"0\r\n\r\n" + smuggled,
        )
    )  # TE.TE
    @example(data=req(b"X-A: v", b" folded: x", b"Content-Length: 0", body=smuggled))  # obs-fold
    @example(data=req(b"X-A: v\nContent-Length: 0\nX-B: y", body=smuggled))  # bare LF
    @example(data=req(b"X-A: v\x00x", b"Content-Length: 0", body=smuggled))  # NUL
    @example(data=req(b"Transfer-Encoding: \x0bchunked", body=b"0\r\n\r\n" + smuggled))
    @example(data=req(f"X-Leak: {CANARY}".encode()))
    @given(data=h1_requests(upstream.port))
    def attack(data: bytes) -> None:
        tls = tls_tunnel(egress, API, upstream.port)
        try:
            _exchange(tls, data)
        finally:
            tls.close()
        assert violations(upstream.records[start:]) == []

    attack()
    time.sleep(0.5)  # a smuggled request would be handled after the first one's answer
    assert violations(upstream.records[start:]) == []


# --- HTTP/2 ------------------------------------------------------------------------------

_h2_names = st.one_of(
    st.sampled_from([b"x-a", b"X-A", b":fake", b":path", b"host", b"content-length",
                     b"transfer-encoding", b"te", b"connection", b"x a", b"x\r\ny"]),
    st.binary(min_size=1, max_size=6),
)  # fmt: skip


def test_h2_malformed_fields(egress: Egress, upstream: Upstream) -> None:
    start = len(upstream.records)

    @FUZZ
    # The named smuggling shapes always run; hypothesis explores around them.
    @example(
        fields=[(b"x-a", b"v\r\n\r\n" + _SMUGGLED.encode())], method="GET", body=b"", trailers=None
    )
    @example(fields=[], method="POST", body=_SMUGGLED.encode(), trailers=None)
    @example(fields=[(b"x-a", b"a\nb")], method="GET", body=b"", trailers=None)
    @example(fields=[(b"x-a", b"a\x00b")], method="GET", body=b"", trailers=None)
    @example(fields=[(b"X-A", b"v"), (b":fake", b"v")], method="GET", body=b"", trailers=None)
    @example(
        fields=[], method="POST", body=b"hi", trailers=[(b"x-t", b"v\r\n\r\n" + _SMUGGLED.encode())]
    )
    @example(fields=[], method="POST", body=b"hi", trailers=[(b"x-t", CANARY.encode())])
    @example(fields=[], method="get", body=b"", trailers=None)
    @given(
        fields=st.lists(st.tuples(_h2_names, _values), max_size=4),
        method=st.sampled_from(["GET", "POST", "get"]),
        body=st.sampled_from([b"", b"hello", _SMUGGLED.encode()]),
        trailers=st.one_of(st.none(), st.lists(st.tuples(_h2_names, _values), max_size=2)),
    )
    def attack(
        fields: list[tuple[bytes, bytes]],
        method: str,
        body: bytes,
        trailers: list[tuple[bytes, bytes]] | None,
    ) -> None:
        tls = tls_tunnel(egress, API, upstream.port, alpn=["h2"])
        try:
            head = h2_head(API, upstream.port, "/v1/fz2", method, fields)
            h2_request(tls, head, body=body, trailers=trailers or None, timeout=3)
        except Exception:  # the h2 client itself may refuse to frame some inputs
            pass
        finally:
            tls.close()
        assert violations(upstream.records[start:]) == []

    attack()
    time.sleep(0.5)
    assert violations(upstream.records[start:]) == []
