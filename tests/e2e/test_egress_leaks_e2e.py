"""From inside a real bottle, on every backend: a credential never leaves in cleartext
or to another port of its host, and a secret the agent holds never leaves wrapped in
an encoding. What arrived is read from the receiving side (a plaintext recorder on
loopback, the fake API's request log), not from what the proxy answered."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import assert_not_written, base_env, bb, bottles, hand_over, trust
from fakes.provider_api import FakeProviderAPI

pytestmark = pytest.mark.e2e
TOKEN = "sk-ant-oat01-" + "FAKEHOSTTOKEN-leaks-e2e-4b8d2f"
PROTECTED = "db-password-" + "Zq7Xv3Lp9Tm2Kw5R"
GH = "ghp_" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7c"

PROBE = r"""
import base64, binascii, gzip, json, os, urllib.request
BASE = "api.anthropic.com"
r = {}
def send(name, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, headers=headers or {},
                                 method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            r[name] = f"{resp.status} {resp.read()[:120]!r}"
    except urllib.error.HTTPError as e:
        r[name] = f"{e.code} {e.read().decode()[:200]}"
    except Exception as e:
        r[name] = "ERR " + type(e).__name__ + " " + str(e)[:120]
if os.environ["PROBE"] == "cleartext":
    port = os.environ["RECORDER_PORT"]
    send("other_port", f"http://{BASE}:{port}/v1/models")
    send("port_80", f"http://{BASE}/v1/models")
    send("tls_port_in_cleartext", f"http://{BASE}:443/v1/models")
    send("https", f"https://{BASE}/v1/models")
else:
    s = open("/workspace/found.txt").read().strip()
    gh = os.environ["GH_A"] + os.environ["GH_B"]
    pct = s[:4] + "%%%02X" % ord(s[4]) + s[5:]
    u = "".join("\\u%04x" % ord(c) for c in s)
    qp = s[:3] + "=%02X" % ord(s[3]) + s[4:]
    mime = ("--b\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + qp + "\r\n--b--\r\n")
    url = f"https://{BASE}/v1/leak"
    send("query_one_escape", f"{url}/q?x={pct}")
    send("hex", f"{url}/hex", binascii.hexlify(s.encode()))
    send("json_u", f"{url}/json", ('{"t": "' + u + '"}').encode(), {"content-type": "application/json"})
    send("form_all_escaped", f"{url}/form", "".join("%%%02x" % b for b in s.encode()).encode())
    send("x_gzip", f"{url}/xgzip", gzip.compress(s.encode()), {"content-encoding": "x-gzip"})
    send("gzip_gzip", f"{url}/gg", gzip.compress(gzip.compress(s.encode())), {"content-encoding": "gzip, gzip"})
    send("quoted_printable", f"{url}/qp", mime.encode(), {"content-type": "multipart/form-data; boundary=b"})
    send("base64_token", f"{url}/b64", base64.b64encode(("token: " + gh).encode()))
    send("undecodable", f"{url}/lzw", b"\x1f\x9d\x90 lzw", {"content-encoding": "compress"})
    send("clean", "https://" + BASE + "/v1/models?q=caf%C3%A9")
print(json.dumps(r))
"""


class Recorder:
    """Plaintext TCP on the fake API's loopback address: records every byte it gets."""

    def __init__(self, address: str) -> None:
        self.sock = socket.create_server((address, 0))
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    self.received.append(conn.recv(65536))
                    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                except OSError:
                    pass


@pytest.fixture
def recorder(fake_api: FakeProviderAPI) -> Iterator[Recorder]:
    rec = Recorder(fake_api.address)
    yield rec
    rec.sock.close()


def _run(tmp_path: Path, backend: str, api: FakeProviderAPI, probe_env: str) -> dict[str, str]:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "probe.py").write_text(PROBE)
    # The agent came across a protected value (a config file, a log): DLP must stop it.
    (ws / "found.txt").write_text(PROTECTED + "\n")
    hand_over(ws)
    (tmp_path / "bot-bottle.yaml").write_text(f"""
bottles:
  b:
    agent_provider:
      template: command
      command: [sh, -c, "python3 /workspace/probe.py > /workspace/out.json"]
    egress:
      routes:
        - host: api.anthropic.com
          auth: {{scheme: Bearer, token_ref: FAKE_TOKEN}}
      hosts: {{api.anthropic.com: {api.address}}}
      upstream_ca: {api.ca_path}
      ssrf_ip_allowlist: [{api.address}/32]
      dlp: {{protect_env: [HOST_SECRET]}}
    env: {{{probe_env}, GH_A: "{GH[:10]}", GH_B: "{GH[10:]}"}}
    workspace: {{mode: mount, path: ws}}
    backend: {backend}
agents:
  probe: {{bottle: b}}
""")
    env = base_env(tmp_path)
    env["FAKE_TOKEN"] = TOKEN
    env["HOST_SECRET"] = PROTECTED
    trust(env, tmp_path)
    # Kept, so that what the bottle wrote of its own is still there to search for TOKEN.
    r = bb(["run", "probe", "-y", "--keep"], env, tmp_path, timeout=240)
    try:
        assert r.returncode == 0, r.stderr
        assert TOKEN not in r.stdout + r.stderr
        assert_not_written(tmp_path, TOKEN, backend)
    finally:
        slugs = [b["slug"] for b in bottles(env, tmp_path)]
        if slugs:
            bb(["rm", *slugs], env, tmp_path)
    out: dict[str, str] = json.loads((ws / "out.json").read_text())
    return out


def test_credential_only_over_tls_to_declared_port(
    tmp_path: Path, any_backend: str, fake_api: FakeProviderAPI, recorder: Recorder
) -> None:
    out = _run(
        tmp_path, any_backend, fake_api, f'PROBE: cleartext, RECORDER_PORT: "{recorder.port}"'
    )
    assert recorder.received == [], recorder.received
    for name in ("other_port", "port_80", "tls_port_in_cleartext"):
        assert out[name].startswith("403 bot-bottle egress denied"), out
        assert "not http to port" in out[name], out
    assert out["https"].startswith("200"), out
    assert [q.headers.get("authorization") for q in fake_api.requests] == [f"Bearer {TOKEN}"]


def test_encoded_secrets_are_refused(
    tmp_path: Path, any_backend: str, fake_api: FakeProviderAPI
) -> None:
    out = _run(tmp_path, any_backend, fake_api, "PROBE: encoded")
    assert out.pop("clean").startswith("200"), out
    refused = {k: v for k, v in out.items() if not v.startswith("403 bot-bottle egress denied")}
    assert refused == {}, refused
    assert "cannot be decoded" in out["undecodable"]
    leaked = [q.path for q in fake_api.requests if q.path.startswith("/v1/leak")]
    assert leaked == [], leaked
    assert [q.path for q in fake_api.requests] == ["/v1/models?q=caf%C3%A9"]
