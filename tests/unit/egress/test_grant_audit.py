"""Granted routes are recorded when they come and go, with their grantor; other
routes, and sources that only look like grants, are not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot_bottle.policy.egress_policy import Route, RouteSource
from bot_bottle.policy.supervise import Ask
from bot_bottle.sidecars.egress.grant_audit import GrantAudit, granted
from bot_bottle.state.requests import RequestDir


def _grant(rid: str, expires: float = 0.0) -> Route:
    return Route("api.example.test", paths=("/v1/",), methods=("GET",),
                 source=RouteSource(f"grant {rid}", manifest=False), expires=expires)  # fmt: skip


def test_live_expired_and_removed_name_the_grantor(tmp_path: Path) -> None:
    asks = RequestDir(tmp_path, "b")
    rec = asks.create(Ask("route", reason="r", host="api.example.test", path="/v1/"))
    asks.decide(rec, status="granted", decided_by="alice")
    out: list[dict[str, Any]] = []
    audit = GrantAudit(asks, lambda r: out.append(dict(r)))
    manifest = Route("other.test")
    g = _grant(rec.id, expires=100.0)
    audit.changed((manifest,), (manifest, g), now=50.0)
    audit.changed((manifest, g), (manifest,), now=100.0)
    audit.changed((), (_grant("r-0000000a"),), now=1.0)
    audit.changed((_grant("r-0000000a"),), (), now=2.0)
    assert [(r["event"], r["request"], r["decided_by"]) for r in out] == [
        ("live", rec.id, "alice"), ("expired", rec.id, "alice"),
        ("live", "r-0000000a", "unknown"), ("removed", "r-0000000a", "unknown"),
    ]  # fmt: skip
    assert out[0]["path"] == "/v1/" and out[0]["methods"] == ["GET"]


def test_only_grant_sources_with_a_request_id_count() -> None:
    odd = Route("x.test", source=RouteSource("grant ../../etc", manifest=False))
    assert granted((odd, Route("y.test"), _grant("r-12345678"))).keys() == {"r-12345678"}
