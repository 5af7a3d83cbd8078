"""The egress sidecar killed mid-download and mid-upload (issue 14, item 4): the agent
gets an error at once instead of hanging, nothing leaves by another path afterwards, and
`ls` shows the kept bottle as degraded."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from e2e_support import base_env, bb, bottles, hand_over, trust, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration" / "egress"))

from egress_upstream import Upstream

pytestmark = pytest.mark.e2e

# The agent: start a transfer through the egress, say so, and time the error it gets
# when the sidecar dies; then try a fresh request, which must fail too.
AGENT = r"""
import http.client, json, os, ssl, time
P = json.loads(os.environ["KILL_PARAMS"])
host, port = os.environ["HTTPS_PROXY"].removeprefix("http://").rstrip("/").rsplit(":", 1)

def conn(context=None):
    c = http.client.HTTPSConnection(host, int(port), timeout=60,
                                    context=context or ssl.create_default_context())
    c.set_tunnel("api.example.test", P["up"])
    return c

r = {}
started = False
moved = 0
try:
    c = conn()
    if P["mode"] == "download":
        c.request("GET", f"/bytes/{1 << 30}")
        resp = c.getresponse()
        while True:
            data = resp.read(65536)
            if not data:
                raise EOFError("download ended early")
            moved += len(data)
            if moved >= 1 << 20 and not started:
                open("/workspace/started", "w").write(f"started {moved}")
                started = True
            time.sleep(0.005)  # a slow reader: the download is still running at the kill
    else:
        c.putrequest("POST", f"/v1/upload-{P['m']}")
        c.putheader("content-length", str(1 << 30))
        c.endheaders()
        while True:
            c.send(b"u" * 65536)
            moved += 65536
            if moved >= 1 << 20 and not started:
                open("/workspace/started", "w").write(f"started {moved}")
                started = True
            time.sleep(0.005)
except Exception as e:
    r["error"] = f"{type(e).__name__}: {e}"
    open("/workspace/failed", "w").write("failed")  # timed by the host, on its own clock
r["moved"] = moved
try:
    # Any certificate will do: a path out that skipped the egress would not present the
    # egress CA's, and this request must fail for want of a path, not of trust.
    c = conn(ssl._create_unverified_context())
    c.request("GET", f"/v1/after-{P['m']}")
    r["after"] = f"OK {c.getresponse().status}"
except Exception as e:
    r["after"] = f"FAIL {type(e).__name__}"
open("/workspace/result.json", "w").write(json.dumps(r))
while not os.path.exists("/workspace/go"):  # still running while the test looks at `ls`
    time.sleep(0.05)
"""


@pytest.mark.parametrize("mode", ["download", "upload"])
def test_agent_sees_a_killed_egress_at_once(
    tmp_path: Path, any_backend: str, upstream: Upstream, mode: str
) -> None:
    marker = f"k{random.randrange(16**8):08x}"
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "agent.py").write_text(AGENT)
    hand_over(ws)
    params = {"up": upstream.port, "m": marker, "mode": mode}
    (tmp_path / "bot-bottle.yaml").write_text(f"""
bottles:
  b:
    agent_provider: {{template: command, command: [python3, /workspace/agent.py]}}
    egress:
      hosts: {{api.example.test: 127.0.0.1}}
      upstream_ca: {upstream.ca_path}
      ssrf_ip_allowlist: [127.0.0.1/32]
      routes:
        - host: api.example.test
          port: {upstream.port}
    env:
      KILL_PARAMS: '{json.dumps(params)}'
    workspace: {{mode: mount, path: ws}}
    backend: {any_backend}
agents:
  a: {{bottle: b}}
""")
    env = base_env(tmp_path)
    trust(env, tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot_bottle", "run", "a", "-y", "--keep"],
        env=env, cwd=tmp_path, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # A microVM bottle boots its kernel and python under TCG first: give it time.
        wait_for(ws / "started", "started", timeout=120)
        (bottle,) = bottles(env, tmp_path)
        info = json.loads(bb(["info", bottle["slug"]], env, tmp_path).stdout)
        before = len(upstream.records)
        os.kill(info["pids"]["egress"], signal.SIGKILL)
        killed_at = time.monotonic()
        wait_for(ws / "failed", "failed", timeout=15)
        failed_after = time.monotonic() - killed_at
        result = json.loads(wait_for(ws / "result.json", "}", timeout=90))
        end = time.monotonic() + 10
        while (listed := bottles(env, tmp_path))[0]["status"] != "degraded":
            assert time.monotonic() < end, listed
            time.sleep(0.05)
        (ws / "go").touch()
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()

    # An error, promptly: not the agent's own 60 s timeout.
    assert "error" in result and "timeout" not in result["error"].lower(), result
    # A download ends for the agent once it has read what the sockets on the way already
    # held: megabytes, which python under TCG (a microVM here) takes seconds to read.
    assert failed_after < (10 if any_backend == "microvm" else 3), (result, failed_after)
    # Fail closed: a fresh request finds no way out, and the upstream saw nothing more
    # (an upload is buffered for DLP, so not even the part sent before the kill left).
    assert result["after"].startswith("FAIL"), result
    late = [q.path for q in upstream.records[before:]]
    assert late == [], late
    assert not [q for q in upstream.records if marker in q.path], upstream.records
    assert bb(["rm", bottle["slug"]], env, tmp_path).returncode == 0
