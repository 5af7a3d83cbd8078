"""`grant --persist` (issue 13, item 3): the route an agent asked for goes live in its
running bottle and into the manifest it was started from, as approved configuration:
the next unattended `run` of the same agent starts (it is not refused as changed) with
the route in its plan, and reaches the upstream from the first request. The attack: a
manifest changed after approval (as an agent with the workspace mounted could have
done) is never persisted into, nor the grant applied; the file stays as it was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from e2e_support import bb, wait_for
from egress_upstream import Upstream
from test_supervise_e2e import pending, start

pytestmark = pytest.mark.e2e

AGAIN = r"""
import json, os, ssl, urllib.error, urllib.request
P = json.loads(os.environ["ASK_PARAMS"])
try:
    with urllib.request.urlopen(f"https://api.example.test:{P['up']}/v1/again", timeout=60,
                                context=ssl.create_default_context()) as r:
        out = r.status
except urllib.error.HTTPError as e:
    out = e.code
except urllib.error.URLError as e:
    out = str(e.reason)
open("/workspace/again.json", "w").write(json.dumps(out))
"""


def test_grant_persist_writes_the_route_as_approved_configuration(
    tmp_path: Path, bottle_backend: str, upstream: Upstream
) -> None:
    env, ws, proc = start(tmp_path, bottle_backend, upstream)
    manifest = tmp_path / "bot-bottle.yaml"
    original = manifest.read_text()
    try:
        rid = wait_for(ws / "asked", "r-", timeout=120).strip()
        g = bb(["grant", rid, "--persist"], env, tmp_path)
        assert g.returncode == 0, g.stderr
        result = json.loads(wait_for(ws / "result.json", "}", timeout=120))
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert f"granted {rid}" in g.stdout and "until the bottle ends" not in g.stdout, g.stdout
    # Live: the granted prefix reached the upstream.
    assert result["after"][0] == 200, result
    # Persisted: the file and the lines are reported; the rest of the file is as it was.
    assert f"wrote {manifest}" in g.stdout and "lines " in g.stdout, g.stdout
    text = manifest.read_text()
    before, _, after = original.partition("routes: []")
    assert text.startswith(before) and text.endswith(after), text
    routes = yaml.safe_load(text)["bottles"]["b"]["egress"]["routes"]
    assert routes == [{"host": "api.example.test", "port": upstream.port,
                       "path_allowlist": ["/v1/"], "methods": ["GET"]}]  # fmt: skip
    # Approved as it is now, with the route in the plan.
    p = bb(["plan", "a", "--json"], env, tmp_path)
    assert p.returncode == 0, p.stderr
    plan = json.loads(p.stdout)
    assert plan["approval"]["status"] == "approved", plan["approval"]
    (granted,) = [r for r in plan["routes"] if r["host"] == "api.example.test"]
    assert (granted["port"], granted["paths"], granted["methods"]) == (
        upstream.port,
        ["/v1/"],
        ["GET"],
    ), granted
    # The next unattended run starts, and the route is there from its first request.
    (ws / "agent.py").write_text(AGAIN)
    r = bb(["run", "a", "-y"], env, tmp_path, timeout=180)
    assert r.returncode == 0, r.stderr
    assert json.loads((ws / "again.json").read_text()) == 200
    assert [q.path for q in upstream.records][-1] == "/v1/again"


def test_persist_refuses_a_manifest_changed_since_approval(
    tmp_path: Path, upstream: Upstream
) -> None:
    env, ws, proc = start(tmp_path, "namespace", upstream)
    manifest = tmp_path / "bot-bottle.yaml"
    try:
        rid = wait_for(ws / "asked", "r-", timeout=120).strip()
        # A persisted route has no end: --for with --persist is refused, nothing applied.
        both = bb(["grant", rid, "--persist", "--for", "10m"], env, tmp_path)
        assert both.returncode == 2 and "not both" in both.stderr, both.stderr
        # What an agent that can write the manifest does: widen it, hoping the operator's
        # persist approves its edit along with the route.
        tampered = manifest.read_text().replace(
            "routes: []", "routes: [{host: exfil.example.test}]"
        )
        manifest.write_text(tampered)
        g = bb(["grant", rid, "--persist"], env, tmp_path)
        assert g.returncode == 2, (g.stdout, g.stderr)
        assert "changed since it was approved" in g.stderr, g.stderr
        assert "route exfil.example.test" in g.stderr, g.stderr
        assert manifest.read_text() == tampered
        # Nothing was granted either: the request still waits for the operator.
        assert [r["id"] for r in pending(env, tmp_path)] == [rid]
        d = bb(["deny", rid, "--reason", "not now"], env, tmp_path)
        assert d.returncode == 0, d.stderr
        result = json.loads(wait_for(ws / "result.json", "}", timeout=120))
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert result["answer"]["status"] == "denied", result
    assert result["after"][0] == 403, result
    assert upstream.records == []
    # And the changed manifest is still not approved: the next unattended run refuses it.
    r = bb(["run", "a", "-y"], env, tmp_path)
    assert r.returncode == 2 and "changed since approval" in r.stderr, r.stderr
