"""The supervise endpoint reloads the routes before it tells the agent "granted"."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from bot_bottle.policy.supervise import API_PREFIX, parse_ask
from bot_bottle.sidecars.egress.supervise import SuperviseEndpoint
from bot_bottle.state.requests import RequestDir

ASK = {"kind": "route", "host": "api.example.test", "port": 443, "path": "/v1/",
       "methods": ["GET"], "reason": "the task needs it"}  # fmt: skip


def test_a_poll_that_reports_granted_reloads_the_routes_first(tmp_path: Path) -> None:
    reloads: list[str] = []
    requests = RequestDir(tmp_path / "requests", "b")
    endpoint = SuperviseEndpoint(requests, on_granted=lambda: reloads.append("reload"))
    rec = requests.create(parse_ask(json.dumps(ASK).encode()))

    pending = asyncio.run(endpoint.answer("GET", f"{API_PREFIX}/{rec.id}", b""))
    assert pending.body["status"] == "pending" and reloads == []

    with requests.deciding(rec.id) as current:
        assert current is not None
        requests.decide(current, status="granted", decided_by="op")
    granted = asyncio.run(endpoint.answer("GET", f"{API_PREFIX}/{rec.id}", b""))
    assert granted.body["status"] == "granted" and reloads == ["reload"]


def test_a_denial_does_not_reload(tmp_path: Path) -> None:
    reloads: list[str] = []
    requests = RequestDir(tmp_path / "requests", "b")
    endpoint = SuperviseEndpoint(requests, on_granted=lambda: reloads.append("reload"))
    rec = requests.create(parse_ask(json.dumps(ASK).encode()))
    with requests.deciding(rec.id) as current:
        assert current is not None
        requests.decide(current, status="denied", answer="no", decided_by="op")
    denied = asyncio.run(endpoint.answer("GET", f"{API_PREFIX}/{rec.id}", b""))
    assert denied.body["status"] == "denied" and reloads == []


def test_a_wait_that_is_not_a_finite_number_is_refused(tmp_path: Path) -> None:
    # `nan` compared false with every deadline: the poll never ended while pending.
    endpoint = SuperviseEndpoint(RequestDir(tmp_path, "b"))
    rec = endpoint.requests.create(
        parse_ask(json.dumps({"kind": "question", "question": "q"}).encode())
    )
    for w in ("nan", "inf", "-inf"):
        poll = endpoint.answer("GET", f"{API_PREFIX}/{rec.id}?wait={w}", b"")
        reply = asyncio.run(asyncio.wait_for(poll, 5))
        assert reply.status == 400, (w, reply)
