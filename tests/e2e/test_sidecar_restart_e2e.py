"""A kept bottle whose egress was killed is offered a restart, and `resume` does it
(issue 14, item 4): the agent's requests fail at once while the egress is dead, `ls`
says `degraded` and how to restart it, `resume SLUG` starts the sidecars again while
the agent runs on, and the agent's next request goes out (and is on record). Nothing
left while the egress was dead, and the restarted egress ends with the bottle."""

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

from bot_bottle.sidecars.process import alive

pytestmark = pytest.mark.e2e

# The agent: for each /workspace/go-N the test writes (a path), one GET through the
# egress on a fresh connection; "status seconds" or "error seconds" written back.
AGENT = r"""
import http.client, os, ssl, time
host, port = os.environ["HTTPS_PROXY"].removeprefix("http://").rstrip("/").rsplit(":", 1)
n = 0
while not os.path.exists("/workspace/stop"):
    if not os.path.exists(f"/workspace/go-{n}"):
        time.sleep(0.05)
        continue
    path = open(f"/workspace/go-{n}").read()
    t0 = time.monotonic()
    try:
        c = http.client.HTTPSConnection(host, int(port), timeout=30,
                                        context=ssl.create_default_context())
        c.set_tunnel("api.example.test", int(os.environ["UP_PORT"]))
        c.request("GET", path)
        out = str(c.getresponse().status)
    except Exception as e:
        out = type(e).__name__
    open(f"/workspace/out-{n}.tmp", "w").write(f"{out} {time.monotonic() - t0:.2f}")
    os.rename(f"/workspace/out-{n}.tmp", f"/workspace/out-{n}")
    n += 1
"""


def test_killed_egress_is_restarted_by_resume(
    tmp_path: Path, bottle_backend: str, upstream: Upstream
) -> None:
    marker = f"r{random.randrange(16**8):08x}"
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "agent.py").write_text(AGENT)
    hand_over(ws)
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
      UP_PORT: '{upstream.port}'
    workspace: {{mode: mount, path: ws}}
    backend: {bottle_backend}
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
    n = 0

    def get(path: str) -> tuple[str, float]:
        nonlocal n
        (ws / f"go-{n}").write_text(path)
        out, secs = wait_for(ws / f"out-{n}", " ", timeout=120).split()
        n += 1
        return out, float(secs)

    try:
        assert get(f"/v1/{marker}-before")[0] == "200"
        (bottle,) = bottles(env, tmp_path)
        slug = bottle["slug"]
        old = json.loads(bb(["info", slug], env, tmp_path).stdout)["pids"]["egress"]
        os.kill(old, signal.SIGKILL)
        # The agent sees an error at once, and nothing leaves.
        out, secs = get(f"/v1/{marker}-dead")
        assert out != "200" and secs < 5, (out, secs)
        # `ls` says what happened and how to restart it.
        end = time.monotonic() + 10
        while (row := bottles(env, tmp_path)[0])["status"] != "degraded":
            assert time.monotonic() < end, row
            time.sleep(0.1)
        assert f"bot-bottle resume {slug}" in row["hint"], row
        text = bb(["ls"], env, tmp_path)
        assert f"bot-bottle resume {slug}" in text.stderr, text.stdout + text.stderr
        # `resume` restarts the sidecars while the agent runs on; its network is back.
        r = bb(["resume", slug, "-y"], env, tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "restarted egress" in r.stderr, r.stderr
        assert bottles(env, tmp_path)[0]["status"] == "running"
        new = json.loads(bb(["info", slug], env, tmp_path).stdout)["pids"]["egress"]
        assert new != old and alive(new)
        assert get(f"/v1/{marker}-after")[0] == "200"
        (ws / "stop").touch()
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        (ws / "stop").touch()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            bb(["gc"], env, tmp_path)  # a failed test leaves no sidecar running

    sent = [q.path for q in upstream.records if marker in q.path]
    assert sent == [f"/v1/{marker}-before", f"/v1/{marker}-after"], sent
    # The restarted egress ended with the bottle, and its record is in the chain.
    end = time.monotonic() + 10
    while alive(new):
        assert time.monotonic() < end, "the restarted egress outlived its bottle"
        time.sleep(0.1)
    assert bb(["logs", "--verify", slug], env, tmp_path).returncode == 0
    log = bb(["logs", "--json", slug], env, tmp_path).stdout
    assert f"{marker}-before" in log and f"{marker}-after" in log
    assert bb(["rm", slug], env, tmp_path).returncode == 0
