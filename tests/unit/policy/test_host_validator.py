"""One host validator: a route host the manifest accepts is one the egress route table
and the routes file keep, and the other way round (main accepted `127.1` and the
egress silently dropped it, so the route failed at run time with a 403)."""

from __future__ import annotations

import json

import pytest

from bot_bottle.errors import ManifestError
from bot_bottle.manifest.loader import parse_manifest
from bot_bottle.policy.egress_policy import FORMAT_VERSION, EgressPolicy, Route
from bot_bottle.policy.route import RouteTable

HOSTS = [
    # refused everywhere: IPv4 aliases a resolver reads as 127.0.0.1, a wildcard over
    # an address, junk
    "127.1", "2130706433", "0x7f.0.0.1", "*.1.2", "*.10.0.0.1", "a.*.b", "*", "[::1]:443",
    "exa mple.com", "a..b", "fe80::1%eth0", "\uff45xample.com",
    # accepted everywhere
    "api.github.com", "*.github.com", "API.GitHub.com.", "127.0.0.1", "::1", "[::1]",
    "2001:db8::1", "bücher.example", "_dmarc.example.com",
]  # fmt: skip


def _manifest_accepts(host: str) -> bool:
    doc = {"bottles": {"dev": {"egress": {"routes": [{"host": host}]}}},
           "agents": {"c": {"bottle": "dev"}}}  # fmt: skip
    try:
        parse_manifest(json.dumps(doc))
    except ManifestError as e:
        assert "bottles.dev.egress.routes[0].host" in str(e.path), e
        return False
    return True


def _table_keeps(host: str) -> bool:
    return len(RouteTable.build([Route(host=host)]).entries) == 1


def _routes_file_accepts(host: str) -> bool:
    try:
        EgressPolicy.from_dict({"version": FORMAT_VERSION, "routes": [{"host": host}]})
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("host", HOSTS)
def test_manifest_and_egress_agree(host: str) -> None:
    verdicts = (_manifest_accepts(host), _table_keeps(host), _routes_file_accepts(host))
    assert len(set(verdicts)) == 1, verdicts


@pytest.mark.parametrize("host", ["127.1", "2130706433", "0x7f.0.0.1", "*.1.2"])
def test_manifest_refuses_what_the_egress_cannot_match(host: str) -> None:
    assert not _manifest_accepts(host)


def test_the_manifest_stores_what_the_egress_matches() -> None:
    doc = {"bottles": {"dev": {"egress": {"routes": [{"host": "API.GitHub.com."}, {"host": "[::1]"}]}}},
           "agents": {"c": {"bottle": "dev"}}}  # fmt: skip
    routes = parse_manifest(json.dumps(doc)).bottles["dev"].egress.routes
    assert [r.host for r in routes] == ["api.github.com", "::1"]
