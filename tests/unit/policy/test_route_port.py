"""Routes carry a scheme and a port: a host allowed over https is not allowed in
cleartext or on another port, and a credential is injected only over https to the
declared port."""

from __future__ import annotations

import re

import pytest

from bot_bottle.policy.egress_policy import EgressPolicy, Route, RouteAuth
from bot_bottle.policy.route import decide_route, find_host_route
from bot_bottle.sidecars.egress.credentials import Credentials
from bot_bottle.sidecars.egress.gate import Gate

AUTH = RouteAuth("Bearer", "EGRESS_TOKEN_0")
ROUTES = (
    Route(host="api.example.com", auth=AUTH),
    Route(host="mirror.example.com", scheme="http", port=8080),
    Route(host="svc.example.com", port=8443),
)


@pytest.mark.parametrize(
    ("host", "scheme", "port", "allow", "rule"),
    [
        ("api.example.com", "https", 443, True, "route"),
        ("api.example.com", "http", 25, False, "port"),
        ("api.example.com", "http", 443, False, "port"),
        ("api.example.com", "http", 80, False, "port"),
        ("api.example.com", "https", 8443, False, "port"),
        ("mirror.example.com", "http", 8080, True, "route"),
        ("mirror.example.com", "https", 8080, False, "port"),
        ("mirror.example.com", "http", 80, False, "port"),
        ("svc.example.com", "https", 8443, True, "route"),
        ("svc.example.com", "https", 443, False, "port"),
    ],
)
def test_scheme_and_port_must_match(
    host: str, scheme: str, port: int, allow: bool, rule: str
) -> None:
    m = decide_route(ROUTES, "GET", host, "/x", scheme=scheme, port=port)
    assert m.decision.allow is allow and m.decision.rule == rule, m.decision
    if not allow:
        assert f"not {scheme} to port {port}" in m.decision.reason
        # The hint names this very port (not just the word), and cleartext only for http.
        assert f"`port: {port}`" in m.decision.hint and f"route for {host}" in m.decision.hint
        assert ("`scheme: http`" in m.decision.hint) == (scheme == "http"), m.decision.hint


def test_connect_gate_knows_ports() -> None:
    assert find_host_route(ROUTES, "api.example.com", 443) is ROUTES[0]
    assert find_host_route(ROUTES, "api.example.com", 25) is None
    gate = Gate.build(EgressPolicy("b", routes=ROUTES), Credentials({"EGRESS_TOKEN_0": "t" * 20}))
    assert gate.check_connect("api.example.com", 443).allow
    d = gate.check_connect("api.example.com", 25)
    assert not d.allow and d.rule == "port" and "https:443" in d.reason
    # A host with no route: its tunnel is accepted on 443 (and declared ports) only to
    # answer each request with the readable 403; elsewhere refused before TLS.
    assert gate.check_connect("nope.example.com", 443).rule == "route"
    assert gate.check_connect("nope.example.com", 8443).rule == "route"  # svc declares it
    assert gate.check_connect("nope.example.com", 25).rule == "connect"


@pytest.mark.parametrize(
    ("scheme", "port", "allow"),
    [("https", 443, True), ("http", 443, False), ("http", 25, False), ("https", 8443, False)],
)
def test_injection_only_over_https_to_declared_port(scheme: str, port: int, allow: bool) -> None:
    gate = Gate.build(EgressPolicy("b", routes=ROUTES), Credentials({"EGRESS_TOKEN_0": "t" * 20}))
    d = gate.check_injection(ROUTES[0], scheme, port)
    assert d.allow is allow
    assert not gate.check_injection(
        Route("x.com", auth=AUTH, scheme="http", port=443), "https", 443
    ).allow


def _doc(route: dict[str, object]) -> dict[str, object]:
    return {"version": 1, "routes": [route]}


def test_routes_file_defaults_and_round_trip() -> None:
    p = EgressPolicy.from_dict(_doc({"host": "a.com"}))
    assert (p.routes[0].scheme, p.routes[0].port) == ("https", 443)
    p = EgressPolicy.from_dict(_doc({"host": "a.com", "scheme": "http"}))
    assert (p.routes[0].scheme, p.routes[0].port) == ("http", 80)
    again = EgressPolicy.from_json(p.to_json())
    assert again.routes == p.routes


@pytest.mark.parametrize(
    ("route", "where"),
    [
        ({"host": "a.com", "scheme": "http", "auth": {"scheme": "Bearer", "slot": "EGRESS_TOKEN_0"}}, "routes[0].scheme"),
        ({"host": "a.com", "scheme": "http", "tls_passthrough": True}, "routes[0].scheme"),
        ({"host": "a.com", "scheme": "ftp"}, "routes[0].scheme"),
        ({"host": "a.com", "port": 0}, "routes[0].port"),
        ({"host": "a.com", "port": 70000}, "routes[0].port"),
        ({"host": "a.com", "port": "443"}, "routes[0].port"),
        ({"host": "a.com", "port": True}, "routes[0].port"),
    ],
)  # fmt: skip
def test_routes_file_refuses_bad_scheme_port(route: dict[str, object], where: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(where)):
        EgressPolicy.from_dict(_doc(route))


def test_labels_name_scheme_and_port_when_not_the_default() -> None:
    # Two routes to one host that differ only in port must not share an audit label.
    assert Route(host="api.example.com", paths=("/v1/",)).label == "api.example.com /v1/"
    assert Route(host="svc.example.com", port=8443).label == "svc.example.com:8443"
    assert Route(host="m.example.com", scheme="http", port=80).label == "http://m.example.com"
    assert Route(host="m.example.com", scheme="http", port=8080).label == (
        "http://m.example.com:8080"
    )
