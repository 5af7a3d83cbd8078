"""decide_route: host, path-prefix and method rules, hints, and failing closed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot_bottle.policy import route as route_mod
from bot_bottle.policy.egress_policy import Route
from bot_bottle.policy.route import decide_route, find_host_route, normalize_path

ROUTES = (
    Route(host="api.github.com", paths=("/repos", "/user/"), methods=("GET", "POST")),
    Route(host="api.github.com", paths=("/graphql",), methods=("POST",)),
    Route(host="*.npmjs.org"),
    Route(host="pypi.org", paths=("/simple",)),
    Route(host="passthrough.example", tls_passthrough=True),
)


@pytest.mark.parametrize(
    ("method", "host", "target", "allow", "rule", "path"),
    [
        ("GET", "api.github.com", "/repos", True, "route", "/repos"),
        ("GET", "API.GitHub.com.", "/repos/x/y?per_page=1", True, "route", "/repos/x/y"),
        ("POST", "api.github.com", "/repos/x/issues", True, "route", "/repos/x/issues"),
        ("GET", "api.github.com", "/reposx", False, "path", "/reposx"),
        ("GET", "api.github.com", "/Repos", False, "path", "/Repos"),
        ("GET", "api.github.com", "/user", False, "path", "/user"),
        ("GET", "api.github.com", "/user/emails", True, "route", "/user/emails"),
        ("GET", "api.github.com", "/repos/../admin", False, "path", "/admin"),
        ("GET", "api.github.com", "//repos", True, "route", "/repos"),
        ("GET", "api.github.com", "/repos/%2e%2e/admin", False, "path-rejected", ""),
        ("GET", "api.github.com", "/repos%2f..%2fadmin", False, "path-rejected", ""),
        ("DELETE", "api.github.com", "/repos/x", False, "method", "/repos/x"),
        ("get", "api.github.com", "/repos/x", False, "method", "/repos/x"),
        ("POST", "api.github.com", "/graphql", True, "route", "/graphql"),
        ("GET", "api.github.com", "/graphql", False, "method", "/graphql"),
        ("GET", "registry.npmjs.org", "/anything/at/all", True, "route", "/anything/at/all"),
        ("GET", "npmjs.org", "/", False, "route", "/"),
        ("GET", "evilnpmjs.org", "/", False, "route", "/"),
        ("GET", "pypi.org", "/simple/requests/", True, "route", "/simple/requests/"),
        ("GET", "pypi.org", "/simple-evil", False, "path", "/simple-evil"),
        ("GET", "evil.com", "/repos", False, "route", "/repos"),
        ("GET", "api.github.com:443", "/repos", False, "route", "/repos"),
        ("GET", "x@api.github.com", "/repos", False, "route", "/repos"),
        ("GET", "passthrough.example", "/", False, "route", "/"),
    ],
)
def test_decide_route(
    method: str, host: str, target: str, allow: bool, rule: str, path: str
) -> None:
    m = decide_route(ROUTES, method, host, target)
    assert m.decision.allow is allow
    assert m.decision.rule == rule
    assert m.path == path
    assert (m.route is not None) is allow


def test_allowed_decision_names_the_route() -> None:
    m = decide_route(ROUTES, "POST", "api.github.com", "/graphql")
    assert m.route is ROUTES[1]
    assert m.decision.route == ROUTES[1].label


@pytest.mark.parametrize(
    ("method", "host", "target", "hint"),
    [
        ("GET", "evil.com", "/", "add `- host: evil.com` under bottles.<name>.egress.routes"),
        ("GET", "pypi.org", "/v2/x", "add `/v2` to path_allowlist of route pypi.org"),
        ("PUT", "api.github.com", "/repos", "add `PUT` to methods of route api.github.com"),
    ],
)
def test_denial_hints_name_the_manifest_change(
    method: str, host: str, target: str, hint: str
) -> None:
    assert decide_route(ROUTES, method, host, target).decision.hint == hint


def test_prefix_with_trailing_slash_is_a_plain_prefix() -> None:
    routes = (Route(host="h.com", paths=("/a/",)),)
    assert decide_route(routes, "GET", "h.com", "/a/b").decision.allow
    assert not decide_route(routes, "GET", "h.com", "/a").decision.allow
    assert not decide_route(routes, "GET", "h.com", "/ab").decision.allow


def test_route_prefixes_are_normalized_like_requests() -> None:
    routes = (Route(host="h.com", paths=("/%7euser",)),)
    assert decide_route(routes, "GET", "h.com", "/~user/x").decision.allow


def test_first_matching_route_wins_for_connect() -> None:
    assert find_host_route(ROUTES, "API.github.com") is ROUTES[0]
    assert find_host_route(ROUTES, "passthrough.example.") is ROUTES[4]
    assert find_host_route(ROUTES, "nope.example") is None
    assert find_host_route(ROUTES, "api.github.com:443") is None


def test_internal_error_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(target: str) -> str:
        raise RuntimeError("bug")

    monkeypatch.setattr(route_mod, "normalize_path", boom)
    m = decide_route(ROUTES, "GET", "api.github.com", "/repos")
    assert not m.decision.allow
    assert m.decision.rule == "policy-error"
    assert "bug" in m.decision.reason


@pytest.mark.parametrize(
    ("method", "host", "target"),
    [
        ("GET", "evil.com", "/"),
        ("GET", "", "/"),
        ("GET", "pypi.org", "/nope"),
        ("GET", "pypi.org", "/%2e%2e"),
        ("PATCH", "api.github.com", "/repos"),
        ("GET", "passthrough.example", "/"),
        ("GET", "[::1", "/"),
    ],
)
def test_every_denial_carries_a_reason(method: str, host: str, target: str) -> None:
    d = decide_route(ROUTES, method, host, target).decision
    assert not d.allow
    assert d.reason.strip()


@settings(max_examples=300, deadline=None)
@given(method=st.text(max_size=10), host=st.text(max_size=40), target=st.text(max_size=80))
def test_decide_route_never_fails_closed(method: str, host: str, target: str) -> None:
    """`decide_route` turns any exception into a `policy-error` deny, so "never raises"
    holds by construction; what must hold is that no input reaches that net."""
    m = decide_route(ROUTES, method, host, target)
    assert m.decision.rule != "policy-error", m.decision.reason
    assert m.decision.allow or m.decision.reason


_SEGMENT = st.sampled_from(
    ["api", "v1", "..", ".", "", "%2e", "%2e%2e", "%41", "x;y", "%2f", "a%5cb"]
)


@settings(max_examples=500, deadline=None)
@given(
    prefix=st.sampled_from(["/api", "/api/v1", "/api/"]), segments=st.lists(_SEGMENT, max_size=8)
)
def test_allowed_path_starts_with_its_prefix(prefix: str, segments: list[str]) -> None:
    routes = (Route(host="h.com", paths=(prefix,)),)
    target = "/" + "/".join(segments)
    m = decide_route(routes, "GET", "h.com", target)
    if m.decision.allow:
        assert m.path == normalize_path(target)
        assert m.path.startswith(prefix)
        assert m.path == prefix or m.path.startswith(prefix.rstrip("/") + "/")
    else:
        # Otherwise "allowed implies under the prefix" holds for a policy that denies
        # everything: a `path` denial must be of a path that is not under the prefix.
        assert m.decision.rule in ("path", "path-rejected"), m.decision
        if m.decision.rule == "path":
            p = normalize_path(target)
            assert not (p == prefix or p.startswith(prefix.rstrip("/") + "/")), (target, p)
