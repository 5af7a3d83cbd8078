"""Hot reload: an atomic replace swaps the gate; an invalid file is refused, old routes stay."""

from __future__ import annotations

import json
import os
from pathlib import Path

from egress_unit_env import DOC

from bot_bottle.sidecars.egress.credentials import Credentials
from bot_bottle.sidecars.egress.routes_file import RoutesFile


def replace(path: Path, text: str) -> None:
    tmp = path.with_suffix(".new")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_reload_and_refusal(tmp_path: Path) -> None:
    p = tmp_path / "routes.json"
    p.write_text(json.dumps(DOC))
    events: list[tuple[bool, str]] = []
    creds = Credentials.from_env({"EGRESS_TOKEN_0": "a", "EGRESS_TOKEN_1": "b"})
    rf = RoutesFile(p, creds, on_reload=lambda ok, m: events.append((ok, m)), interval=0)
    assert len(rf.current().policy.routes) == len(DOC["routes"])
    replace(p, json.dumps(dict(DOC, routes=DOC["routes"][:1])))
    assert len(rf.current().policy.routes) == 1 and events[-1][0] is True
    replace(p, "{not json")
    assert len(rf.current().policy.routes) == 1
    assert events[-1][0] is False and "old routes stay" in events[-1][1]
    rf.current()
    assert len(events) == 2, "a refused file is reported once"
    replace(
        p,
        json.dumps(
            dict(
                DOC,
                routes=[{"host": "x.test", "auth": {"scheme": "Bearer", "slot": "EGRESS_TOKEN_7"}}],
            )
        ),
    )
    assert len(rf.current().policy.routes) == 1
    assert "EGRESS_TOKEN_7" in events[-1][1], "a slot the sidecar lacks is refused too"


def test_credentials_repr_hides_values() -> None:
    c = Credentials.from_env({"EGRESS_TOKEN_0": "sk-hidden", "PATH": "/bin"})
    assert "sk-hidden" not in repr(c) and "EGRESS_TOKEN_0" in repr(c)


def test_a_granted_route_stops_matching_when_its_time_ends(tmp_path: Path) -> None:
    import time

    p = tmp_path / "routes.json"
    soon = time.time() + 0.3
    routes = [
        {"host": "kept.test"},
        {"host": "granted.test", "source": "grant r-1", "expires": soon},
    ]
    p.write_text(json.dumps(dict(DOC, routes=routes)))
    events: list[tuple[bool, str]] = []
    creds = Credentials.from_env({"EGRESS_TOKEN_0": "a", "EGRESS_TOKEN_1": "b"})
    rf = RoutesFile(p, creds, on_reload=lambda ok, m: events.append((ok, m)), interval=60)
    assert rf.current().check_route("GET", "granted.test", "/", "https", 443).decision.allow
    time.sleep(0.4)
    assert not rf.current().check_route("GET", "granted.test", "/", "https", 443).decision.allow
    assert rf.current().check_route("GET", "kept.test", "/", "https", 443).decision.allow
    assert events == [(True, "a granted route expired")]


def test_reload_now_sees_a_replacement_inside_the_interval(tmp_path: Path) -> None:
    p = tmp_path / "routes.json"
    p.write_text(json.dumps(DOC))
    creds = Credentials.from_env({"EGRESS_TOKEN_0": "a", "EGRESS_TOKEN_1": "b"})
    rf = RoutesFile(p, creds, interval=3600)
    replace(p, json.dumps(dict(DOC, routes=DOC["routes"][:1])))
    assert len(rf.current().policy.routes) == len(DOC["routes"]), "not checked yet"
    rf.reload_now()
    assert len(rf.current().policy.routes) == 1
