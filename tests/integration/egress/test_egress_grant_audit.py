"""A granted route is audited by the egress that applies it: one record when it goes
live (naming the request, the route and the operator who granted it, read from the
request record) and one when its time runs out; the hash chain stays intact."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import pytest
from egress_harness import Egress
from egress_upstream import Upstream

from bot_bottle.cli.supervise_cmds import _add_route
from bot_bottle.state.requests import RequestDir

pytestmark = pytest.mark.integration

ASK = "http://supervise.bot-bottle.internal/v1/ask"


def test_a_grant_is_audited_live_and_expired_with_its_grantor(
    make_egress: Callable[..., Egress], upstream: Upstream
) -> None:
    eg = make_egress(routes=[], doc_extra={"supervise": True})
    ctx = ssl.create_default_context(cafile=str(eg.ca))
    target = f"https://api.example.test:{upstream.port}/v1/data"
    with httpx.Client(proxy=eg.proxy, verify=ctx, timeout=20) as c:
        ask = {"kind": "route", "host": "api.example.test", "port": upstream.port,
               "path": "/v1/", "methods": ["GET"], "reason": "the task needs it"}  # fmt: skip
        r = c.post(ASK, content=json.dumps(ask))
        assert r.status_code == 201, r.text
        rid = r.json()["id"]
        # The operator's side, as `bot-bottle grant` does it (`alice` granted it).
        asks = RequestDir(eg.tmp / "requests", "test-bottle")
        with asks.deciding(rid) as rec:
            assert rec is not None
            expires = time.time() + 3
            _add_route(eg.routes_path, rec, expires)
            asks.decide(rec, status="granted", decided_by="alice", expires=expires)
        live = eg.wait_audit(lambda x: x.get("kind") == "grant" and x.get("event") == "live")
        assert live["request"] == rid and live["decided_by"] == "alice", live
        assert live["host"] == "api.example.test" and live["path"] == "/v1/", live
        assert live["methods"] == ["GET"] and live["expires"] == pytest.approx(expires)
        assert "alice" in live["reason"] and rid in live["reason"], live
        assert c.get(target).status_code == 200
        time.sleep(max(0.0, expires - time.time()) + 0.2)
        assert c.get(target).status_code == 403  # the grant ended (the tunnel stays open)
    ended = eg.wait_audit(lambda x: x.get("kind") == "grant" and x.get("event") == "expired")
    assert ended["request"] == rid and ended["decided_by"] == "alice", ended
    grants = [x for x in eg.audit() if x.get("kind") == "grant"]
    assert [g["event"] for g in grants] == ["live", "expired"], grants
    verify = subprocess.run(
        [sys.executable, "-m", "bot_bottle", "logs", "--file", str(eg.audit_path), "--verify"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert verify.returncode == 0 and "intact" in verify.stdout, verify.stderr
    shown = subprocess.run(
        [sys.executable, "-m", "bot_bottle", "logs", "--file", str(eg.audit_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert f"grant {rid}" in shown.stdout and "alice" in shown.stdout, shown.stdout
