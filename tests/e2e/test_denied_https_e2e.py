"""From inside a real bottle, on every backend: HTTPS to a host with no route reads the
egress's 403 body (the rule, the reason, the route that would allow it) through curl
and Python's urllib, instead of a bare "CONNECT tunnel failed". Nothing is dialled:
the undeclared host resolves (`egress.hosts`) to a recording TCP server on :443 of a
loopback address the SSRF allowlist admits, and that server must see no connection."""

from __future__ import annotations

import json
import random
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import base_env, bb, bottles, hand_over, trust
from fakes.provider_api import FakeProviderAPI

pytestmark = pytest.mark.e2e
UNDECLARED = "undeclared.example.test"

PROBE = r"""
import json, subprocess, urllib.request
r = {}
url = "https://undeclared.example.test/simple/requests/?x=1"
p = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", url], capture_output=True, text=True)
r["curl"] = f"{p.returncode} {p.stdout} {p.stderr}"
try:
    urllib.request.urlopen(urllib.request.Request(url, data=b"x=1", method="POST"), timeout=20)
    r["urllib"] = "no error"
except urllib.error.HTTPError as e:
    r["urllib"] = f"{e.code} {e.read().decode()}"
except Exception as e:
    r["urllib"] = f"ERR {type(e).__name__} {e}"
with urllib.request.urlopen("https://api.anthropic.com/v1/models", timeout=20) as resp:
    r["allowed"] = str(resp.status)
print(json.dumps(r))
"""


class TcpRecorder:
    """Accepts TCP on :443 of a loopback address and records every connection."""

    def __init__(self) -> None:
        for _ in range(20):
            addr = f"127.0.{random.randint(1, 250)}.{random.randint(2, 250)}"
            try:
                self.sock = socket.create_server((addr, 443))
                break
            except OSError:
                continue
        else:
            pytest.fail("no free loopback address for the recorder")
        self.address = addr
        self.connections: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(3)
                try:
                    self.connections.append(conn.recv(65536))
                except OSError:
                    self.connections.append(b"")


@pytest.fixture
def recorder(fake_api: FakeProviderAPI) -> Iterator[TcpRecorder]:
    rec = TcpRecorder()
    yield rec
    rec.sock.close()


def test_https_to_undeclared_host_reads_the_403_body(
    tmp_path: Path, any_backend: str, fake_api: FakeProviderAPI, recorder: TcpRecorder
) -> None:
    check_403_body(tmp_path, any_backend, fake_api, recorder, supervise=False)


def test_with_supervise_the_403_body_says_how_to_ask(
    tmp_path: Path, bottle_backend: str, fake_api: FakeProviderAPI, recorder: TcpRecorder
) -> None:
    """The hint is the egress's text, the same on every backend: not run on the (slow)
    microVM backend, whose egress path the test above covers."""
    check_403_body(tmp_path, bottle_backend, fake_api, recorder, supervise=True)


def check_403_body(
    tmp_path: Path, bottle_backend: str, fake_api: FakeProviderAPI, recorder: TcpRecorder,
    supervise: bool,
) -> None:  # fmt: skip
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "probe.py").write_text(PROBE)
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
      hosts: {{api.anthropic.com: {fake_api.address}, {UNDECLARED}: {recorder.address}}}
      upstream_ca: {fake_api.ca_path}
      ssrf_ip_allowlist: [{fake_api.address}/32, {recorder.address}/32]
    workspace: {{mode: mount, path: ws}}
    backend: {bottle_backend}
    supervise: {str(supervise).lower()}
agents:
  probe: {{bottle: b}}
""")
    env = base_env(tmp_path)
    trust(env, tmp_path)
    r = bb(["run", "probe", "-y", "--keep"], env, tmp_path, timeout=240)
    try:
        assert r.returncode == 0, r.stderr
        out = json.loads((ws / "out.json").read_text())
        assert out["allowed"] == "200", out
        want = (
            f"bot-bottle egress denied GET {UNDECLARED}/simple/requests/: "
            f"host {UNDECLARED} is not in the egress routes\n"
            f"to allow: add `- host: {UNDECLARED}` under bottles.b.egress.routes\n"
        )
        # With supervise on, the agent also reads how to ask its operator for the route.
        ask = (
            "to ask: POST http://supervise.bot-bottle.internal/v1/ask "
            f'{{"kind": "route", "host": "{UNDECLARED}", "path": "/simple/requests/", '
            '"methods": ["METHOD"], "reason": "<why the task needs it>"} '
            "(or run bot-bottle-ask), then GET http://supervise.bot-bottle.internal/v1/ask/ID"
            "?wait=60 for the operator's answer\n"
        )
        get = want + (ask.replace("METHOD", "GET") if supervise else "")
        post = want.replace("GET", "POST", 1) + (ask.replace("METHOD", "POST") if supervise else "")
        assert out["curl"] == f"0 {get}\n403 ", out
        assert out["urllib"] == "403 " + post, out
        assert recorder.connections == [], "nothing may be dialled for an undeclared host"
        assert [q.path for q in fake_api.requests] == ["/v1/models"]
        # The denials are in the bottle's audit log, with the path the agent asked for.
        slug = json.loads(bb(["ls", "--json"], env, tmp_path).stdout)[0]["slug"]
        logs = bb(["logs", slug, "--denied", "--json"], env, tmp_path)
        denied = [json.loads(x) for x in logs.stdout.splitlines()]
        asked = sorted((d["method"], d["host"], d["path"], d["rule"]) for d in denied)
        assert asked == [
            ("GET", UNDECLARED, "/simple/requests/", "route"),
            ("POST", UNDECLARED, "/simple/requests/", "route"),
        ], denied
    finally:
        slugs = [b["slug"] for b in bottles(env, tmp_path)]
        if slugs:  # kept for `ls`; a Docker bottle's container would outlive the test
            bb(["rm", *slugs], env, tmp_path)
