"""Supervise from the agent's side (issue 13, item 2): a `command` agent in a real bottle
asks with the in-bottle `bot-bottle-ask` program, on both backends. It finds the program
on its PATH with nothing but the bottle's python3; the test, as the operator, sees the
request in `bot-bottle requests`, grants it, and the agent's next request reaches the
upstream while the same request before the grant got the readable 403. A denial comes
back with the operator's reason (exit 1), a request nobody answers times out (exit 2)
and `wait ID` later reads its answer, and one the endpoint refuses is an error (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from e2e_support import base_env, bb, hand_over, trust, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration" / "egress"))

from egress_upstream import Upstream

pytestmark = pytest.mark.e2e

AGENT = r"""
import json, os, re, shutil, subprocess, urllib.error, urllib.request
UP = int(os.environ["UP_PORT"])
out = {"which": shutil.which("bot-bottle-ask")}
def get(url):
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except urllib.error.URLError as e:  # a refused CONNECT (the upstream is not on :443)
        return (403 if "403" in str(e.reason) else 0), str(e.reason)
def ask(*args):
    r = subprocess.run(["bot-bottle-ask", *args], capture_output=True, text=True, timeout=300)
    return {"rc": r.returncode, "out": r.stdout, "err": r.stderr}
target = f"https://api.example.test:{UP}/v1/data"
out["before"] = get(target)
out["route"] = ask("route", f"api.example.test:{UP}", "/v1/", "--method", "GET",
                   "--reason", "fetch the data the task needs")
out["after"] = get(target)
out["question"] = ask("question", "may I delete the cache?")
out["unanswered"] = ask("question", "anyone there?", "--timeout", "2")
rid = re.search(r"r-[0-9a-f]{8}", out["unanswered"]["out"]).group(0)
open("/workspace/waiting", "w").write(rid)
out["waited"] = ask("wait", rid, "--timeout", "120")
out["refused"] = ask("route", "supervise.bot-bottle.internal", "--reason", "loop")
open("/workspace/result.json", "w").write(json.dumps(out))
print(json.dumps(out))
"""

MANIFEST = """
bottles:
  b:
    agent_provider: {{template: command, command: [python3, /workspace/agent.py]}}
    supervise: true
    egress:
      hosts: {{api.example.test: 127.0.0.1}}
      upstream_ca: {ca}
      ssrf_ip_allowlist: [127.0.0.1/32]
      routes: []
    env:
      UP_PORT: '{port}'
    workspace: {{mode: mount, path: ws}}
    backend: {backend}
agents:
  a: {{bottle: b}}
"""


def next_pending(
    env: dict[str, str], cwd: Path, seen: set[str], proc: subprocess.Popen[str]
) -> dict[str, Any]:
    """The operator's view: wait until `bot-bottle requests --json` lists a new request."""
    end = time.monotonic() + 120
    while time.monotonic() < end:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the bottle ended without asking: {out}\n{err}")
        r = bb(["requests", "--json"], env, cwd)
        assert r.returncode == 0, r.stderr
        fresh = [q for q in json.loads(r.stdout) if q["id"] not in seen]
        if fresh:
            seen.add(fresh[0]["id"])
            return dict(fresh[0])
        time.sleep(0.3)
    raise AssertionError("no request reached the operator")


def test_a_command_agent_asks_with_bot_bottle_ask(
    tmp_path: Path, bottle_backend: str, upstream: Upstream
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "agent.py").write_text(AGENT)
    hand_over(ws)
    (tmp_path / "bot-bottle.yaml").write_text(
        MANIFEST.format(ca=upstream.ca_path, port=upstream.port, backend=bottle_backend)
    )
    env = base_env(tmp_path)
    trust(env, tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot_bottle", "run", "a", "-y"], env=env, cwd=tmp_path,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    seen: set[str] = set()
    try:
        route = next_pending(env, tmp_path, seen, proc)
        assert route["ask"]["host"] == "api.example.test", route
        assert route["ask"]["port"] == upstream.port and route["ask"]["path"] == "/v1/"
        assert route["reason"] == "fetch the data the task needs", route
        reached_before_grant = len(upstream.records)
        g = bb(["grant", route["id"]], env, tmp_path)
        assert g.returncode == 0, g.stderr
        question = next_pending(env, tmp_path, seen, proc)
        assert question["ask"]["question"] == "may I delete the cache?", question
        d = bb(["deny", question["id"], "--reason", "the cache is shared"], env, tmp_path)
        assert d.returncode == 0, d.stderr
        # A request the agent stopped waiting for stays open; `wait ID` picks it up.
        late = wait_for(ws / "waiting", "r-", timeout=120).strip()
        r = bb(["grant", late, "--reply", "yes, it is me"], env, tmp_path)
        assert r.returncode == 0, r.stderr
        result = json.loads(wait_for(ws / "result.json", "}", timeout=120))
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
    assert result["which"] == "/home/agent/.bot-bottle/bin/bot-bottle-ask", result["which"]
    # Before the grant: the readable refusal, and nothing reached the upstream.
    assert result["before"][0] == 403, result["before"]
    assert reached_before_grant == 0
    r = result["route"]
    assert r["rc"] == 0, r
    assert r["out"].startswith(f"granted: https://api.example.test:{upstream.port}/v1/ (GET)")
    assert route["id"] in r["err"], r["err"]  # progress on stderr names the request
    assert result["after"][0] == 200, result["after"]
    assert [q.path for q in upstream.records] == ["/v1/data"]
    q = result["question"]
    assert q["rc"] == 1 and "denied: the cache is shared" in q["out"], q
    u = result["unanswered"]
    assert u["rc"] == 2 and "no answer yet" in u["out"] and "stays open" in u["err"], u
    w = result["waited"]
    assert w["rc"] == 0 and w["out"] == "granted: yes, it is me\n", w
    f = result["refused"]
    assert f["rc"] == 2 and "400" in f["err"] and "not a route" in f["err"], f
