"""Supervise (issue 13, items 2-3): an agent in a real bottle asks its operator for a
route through its own egress; the operator sees it in `bot-bottle requests`, grants it,
and the agent's next request reaches the upstream while the same request before the
grant was refused. Also: deny with a reason, bad input, floods, and grants that must not
apply (unknown id, a bottle that is gone)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from e2e_support import base_env, bb, hand_over, trust, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration" / "egress"))

from egress_upstream import Upstream

pytestmark = pytest.mark.e2e

ENDPOINT = "http://supervise.bot-bottle.internal/v1/ask"

# The agent: try the route, ask for it, wait for the answer, try again. Plain urllib
# through the bottle's proxy variables, as any agent's tool would.
AGENT = r"""
import json, os, ssl, sys, time, urllib.error, urllib.request
P = json.loads(os.environ["ASK_PARAMS"])
out = {}
def call(method, url, body=None):
    req = urllib.request.Request(url, data=body, method=method,
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=90, context=ssl.create_default_context()) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except urllib.error.URLError as e:  # a refused CONNECT: "Tunnel connection failed: 403"
        return (403 if "403" in str(e.reason) else 0), str(e.reason)
target = f"https://api.example.test:{P['up']}/v1/data"
out["before"] = call("GET", target)
ask = {"kind": "route", "host": "api.example.test", "port": P["up"], "path": "/v1/",
       "methods": ["GET"], "reason": "fetch the data the task needs"}
status, body = call("POST", P["endpoint"], json.dumps(ask).encode())
out["ask"] = [status, json.loads(body)]
rid = out["ask"][1]["id"]
open("/workspace/asked", "w").write(rid)
deadline = time.time() + 120
while time.time() < deadline:
    status, body = call("GET", f"{P['endpoint']}/{rid}?wait=20")
    view = json.loads(body)
    if view["status"] != "pending":
        break
out["answer"] = view
out["after"] = call("GET", target)
out["other_path"] = call("GET", f"https://api.example.test:{P['up']}/admin")
open("/workspace/result.json", "w").write(json.dumps(out))
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
      ASK_PARAMS: '{params}'
    workspace: {{mode: mount, path: ws}}
    backend: {backend}
agents:
  a: {{bottle: b}}
"""


def start(tmp_path: Path, backend: str, upstream: Upstream, agent: str = AGENT
          ) -> tuple[dict[str, str], Path, subprocess.Popen[str]]:  # fmt: skip
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "agent.py").write_text(agent)
    hand_over(ws)
    params = json.dumps({"up": upstream.port, "endpoint": ENDPOINT})
    (tmp_path / "bot-bottle.yaml").write_text(
        MANIFEST.format(ca=upstream.ca_path, params=params, backend=backend)
    )
    env = base_env(tmp_path)
    trust(env, tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot_bottle", "run", "a", "-y"], env=env, cwd=tmp_path,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    return env, ws, proc


def pending(env: dict[str, str], cwd: Path) -> list[dict[str, object]]:
    r = bb(["requests", "--json"], env, cwd)
    assert r.returncode == 0, r.stderr
    out: list[dict[str, object]] = json.loads(r.stdout)
    return out


def test_the_agent_asks_the_operator_grants_the_route_goes_live(
    tmp_path: Path, bottle_backend: str, upstream: Upstream
) -> None:
    env, ws, proc = start(tmp_path, bottle_backend, upstream)
    try:
        rid = wait_for(ws / "asked", "r-", timeout=120).strip()
        (listed,) = pending(env, tmp_path)
        assert listed["id"] == rid and listed["status"] == "pending", listed
        text = bb(["requests"], env, tmp_path).stdout
        assert rid in text and "fetch the data the task needs" in text, text
        seen_before_grant = len(upstream.records)
        g = bb(["grant", rid, "--for", "10m"], env, tmp_path)
        assert g.returncode == 0, g.stderr
        assert f"granted {rid}" in g.stdout
        result = json.loads(wait_for(ws / "result.json", "}", timeout=120))
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    # Before the grant: the readable refusal, and nothing reached the upstream.
    assert result["before"][0] == 403, result
    assert seen_before_grant == 0, upstream.records
    assert result["ask"][0] == 201 and result["ask"][1]["status"] == "pending", result
    assert result["answer"]["status"] == "granted", result
    # After: the granted prefix reaches the upstream; another path still does not.
    assert result["after"][0] == 200, result
    assert [q.path for q in upstream.records] == ["/v1/data"], upstream.records
    assert result["other_path"][0] == 403, result
    # Audited, and answered once: a second grant is refused.
    logs = bb(["logs", "--json", _slug(env)], env, tmp_path)
    assert "supervise" in logs.stdout, logs.stdout[-2000:]
    # The egress recorded the grant when it went live, naming who granted it.
    (live,) = [r for r in map(json.loads, logs.stdout.splitlines()) if r.get("kind") == "grant"]
    assert live["event"] == "live" and live["request"] == rid, live
    assert live["decided_by"] == _operator() and live["path"] == "/v1/", live
    assert bb(["logs", "--verify", _slug(env)], env, tmp_path).returncode == 0
    again = bb(["grant", rid], env, tmp_path)
    assert again.returncode != 0


def _operator() -> str:
    import getpass

    return getpass.getuser()


def _slug(env: dict[str, str]) -> str:
    logs = sorted((Path(env["BOT_BOTTLE_HOME"]) / "logs").glob("*.jsonl"))
    return logs[-1].stem


DENIED_AGENT = r"""
import json, os, time, urllib.error, urllib.request
P = json.loads(os.environ["ASK_PARAMS"])
def parse(raw):
    try:
        return json.loads(raw or b"{}")
    except ValueError:
        return {"text": raw.decode(errors="replace")}  # a 403 from the egress is text
def call(method, url, body=None):
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=90) as r:
            return r.status, parse(r.read())
    except urllib.error.HTTPError as e:
        return e.code, parse(e.read())
out = {}
# Bad input: not JSON, unknown kind, a reserved host, oversized, and a secret in it.
out["not_json"] = call("POST", P["endpoint"], b"{nope")
out["bad_kind"] = call("POST", P["endpoint"], b'{"kind": "sudo"}')
out["reserved"] = call("POST", P["endpoint"], json.dumps(
    {"kind": "route", "host": "supervise.bot-bottle.internal", "reason": "x"}).encode())
out["oversized"] = call("POST", P["endpoint"], json.dumps(
    {"kind": "question", "question": "x" * 20000}).encode())
out["secret"] = call("POST", P["endpoint"], json.dumps(
    {"kind": "question", "question": "is ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8 ok?"}).encode())
out["unknown_id"] = call("GET", P["endpoint"] + "/r-00000000")
status, body = call("POST", P["endpoint"], json.dumps(
    {"kind": "question", "question": "may I delete the cache?"}).encode())
rid = body["id"]
open("/workspace/asked", "w").write(rid)
while True:
    status, view = call("GET", f"{P['endpoint']}/{rid}?wait=20")
    if view["status"] != "pending":
        break
out["answer"] = view
# A flood: the rate limit answers 429 long before the operator's list fills.
out["flood"] = [call("POST", P["endpoint"], json.dumps(
    {"kind": "question", "question": f"q{i}"}).encode())[0] for i in range(12)]
open("/workspace/result.json", "w").write(json.dumps(out))
"""


def test_denials_bad_input_and_floods_apply_nothing(tmp_path: Path, upstream: Upstream) -> None:
    env, ws, proc = start(tmp_path, "namespace", upstream, DENIED_AGENT)
    try:
        rid = wait_for(ws / "asked", "r-", timeout=120).strip()
        unknown = bb(["grant", "r-ffffffff"], env, tmp_path)
        assert unknown.returncode != 0 and "no request r-ffffffff" in unknown.stderr
        malformed = bb(["grant", "../etc"], env, tmp_path)
        assert malformed.returncode != 0 and "not a request id" in malformed.stderr
        assert bb(["grant", rid], env, tmp_path).returncode != 0  # a question needs --reply
        d = bb(["deny", rid, "--reason", "the cache is shared"], env, tmp_path)
        assert d.returncode == 0, d.stderr
        result = json.loads(wait_for(ws / "result.json", "}", timeout=120))
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert result["not_json"][0] == 400 and "JSON" in result["not_json"][1]["error"]
    assert result["bad_kind"][0] == 400
    assert result["reserved"][0] == 400
    assert result["oversized"][0] == 400
    assert result["secret"][0] == 403, result["secret"]  # DLP: never written to disk
    assert result["unknown_id"][0] == 404
    assert result["answer"]["status"] == "denied"
    assert result["answer"]["answer"] == "the cache is shared"
    assert 429 in result["flood"], result["flood"]
    assert upstream.records == []
    # The bottle is gone: what it left pending cannot be granted into anything.
    for r in pending(env, tmp_path):
        g = bb(["grant", str(r["id"]), "--reply", "yes"], env, tmp_path)
        assert g.returncode != 0 and "not running" in g.stderr, g.stderr
    # The deny is on record in the bottle's audit log, with who denied it; chain intact.
    logs = bb(["logs", "--json", _slug(env)], env, tmp_path)
    answers = [r for r in map(json.loads, logs.stdout.splitlines()) if r.get("kind") == "answer"]
    assert [(a["request"], a["decision"], a["decided_by"]) for a in answers] == [
        (rid, "deny", _operator())
    ], answers
    assert answers[0]["reason"] == "the cache is shared", answers
    assert bb(["logs", "--verify", _slug(env)], env, tmp_path).returncode == 0
    home = Path(env["BOT_BOTTLE_HOME"])
    hits = [p for p in home.rglob("*") if p.is_file() and b"a1B2c3D4e5F6g7H8i9J0" in p.read_bytes()]
    assert hits == [], hits


def test_without_supervise_the_endpoint_is_just_an_undeclared_host(
    tmp_path: Path, upstream: Upstream
) -> None:
    agent = r"""
import urllib.error, urllib.request
try:
    urllib.request.urlopen(urllib.request.Request(
        "http://supervise.bot-bottle.internal/v1/ask", data=b"{}", method="POST"), timeout=30)
    out = "OK"
except urllib.error.HTTPError as e:
    out = f"{e.code} {e.headers.get('x-bot-bottle-denied')}"
open("/workspace/result.txt", "w").write(out)
"""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "agent.py").write_text(agent)
    hand_over(ws)
    (tmp_path / "bot-bottle.yaml").write_text(
        "bottles:\n  b:\n    agent_provider: {template: command, command: [python3, "
        "/workspace/agent.py]}\n    workspace: {mode: mount, path: ws}\n"
        "    backend: namespace\nagents:\n  a: {bottle: b}\n"
    )
    env = base_env(tmp_path)
    trust(env, tmp_path)
    r = bb(["run", "a", "-y"], env, tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (ws / "result.txt").read_text() == "403 route"


def test_a_poll_cannot_wait_past_the_limit_with_a_non_number(
    tmp_path: Path, upstream: Upstream
) -> None:
    """`wait=nan` compared false with every deadline: the poll (and the sidecar's
    coroutine reading the request file four times a second) never ended while the
    request was pending, past the 60 s the endpoint promises; the agent could pile up
    as many as it liked. A wait that is not a finite number is refused at once."""
    agent = r"""
import json, os, time, urllib.error, urllib.request
P = json.loads(os.environ["ASK_PARAMS"])
def call(method, url, body=None, timeout=90):
    req = urllib.request.Request(url, data=body, method=method)
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            code, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        code, raw = e.code, e.read()
    except OSError as e:
        code, raw = 0, str(e).encode()
    return code, round(time.monotonic() - t0, 1), raw.decode(errors="replace")
code, _, raw = call("POST", P["endpoint"], json.dumps(
    {"kind": "question", "question": "left pending on purpose"}).encode())
rid = json.loads(raw)["id"]
out = {w: call("GET", f"{P['endpoint']}/{rid}?wait={w}", timeout=15)
       for w in ("nan", "NaN", "-nan", "inf", "1")}
open("/workspace/result.json", "w").write(json.dumps(out))
"""
    _env, ws, proc = start(tmp_path, "namespace", upstream, agent)
    try:
        result = json.loads(wait_for(ws / "result.json", "}", timeout=180))
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    for w in ("nan", "NaN", "-nan", "inf"):
        code, seconds, body = result[w]
        assert code == 400 and seconds < 5 and "wait" in body, (w, result[w])
    assert result["1"][0] == 200 and result["1"][1] < 5, result["1"]


def test_polls_the_agent_walks_away_from_cost_the_egress_nothing(
    tmp_path: Path, upstream: Upstream
) -> None:
    """A poll's wait outlives its connection (mitmproxy does not cancel a hook when the
    client goes), so each poll sent and dropped at once cost the sidecar, on the host and
    outside the bottle's limits, a file read and parse four times a second for a minute:
    an amplifier the agent could run as fast as it can open connections. Only a few
    polls wait at a time; the others answer at once."""
    agent = r"""
import json, os, threading, time, urllib.error, urllib.request
P = json.loads(os.environ["ASK_PARAMS"])
req = urllib.request.Request(P["endpoint"], method="POST", data=json.dumps(
    {"kind": "question", "question": "left pending on purpose"}).encode())
rid = json.loads(urllib.request.urlopen(req, timeout=30).read())["id"]
def drop(n):
    for _ in range(n):
        try:
            urllib.request.urlopen(f"{P['endpoint']}/{rid}?wait=60", timeout=0.3).read()
        except Exception:
            pass
threads = [threading.Thread(target=drop, args=(150,)) for _ in range(20)]
[t.start() for t in threads]
[t.join() for t in threads]
open("/workspace/flooded", "w").write(rid)
while not os.path.exists("/workspace/release"):
    time.sleep(0.2)
"""
    from e2e_support import bottles

    env, ws, proc = start(tmp_path, "namespace", upstream, agent)
    try:
        wait_for(ws / "flooded", "r-", timeout=240)
        (bottle,) = bottles(env, tmp_path)
        info = json.loads(bb(["info", bottle["slug"]], env, tmp_path).stdout)
        stat = Path(f"/proc/{info['pids']['egress']}/stat")

        def cpu() -> float:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        before = cpu()
        time.sleep(5)
        spent = cpu() - before
        (ws / "release").write_text("")
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    # An idle egress spends well under a tenth of a second in 5 s.
    assert spent < 0.25, f"the egress spent {spent:.2f} s of CPU in 5 s on dropped polls"
