"""Which credential a grant carries: the bottle's own route to exactly that host and port."""

from __future__ import annotations

from bot_bottle.policy.egress_policy import EgressPolicy, Route, RouteAuth, RouteSource
from bot_bottle.policy.supervise import credential_route

TOKEN = RouteAuth("Bearer", "EGRESS_TOKEN_0")
OTHER = RouteAuth("Bearer", "EGRESS_TOKEN_1")


def policy(*routes: Route) -> EgressPolicy:
    return EgressPolicy(bottle="b", routes=routes)


def test_the_bottles_route_to_that_host_and_port_lends_its_credential() -> None:
    own = Route("api.example.test", paths=("/public/",), auth=TOKEN)
    assert credential_route(policy(own), "api.example.test", 443) == own


def test_no_credential_from_another_host_port_or_a_lookalike() -> None:
    p = policy(Route("api.example.test", auth=TOKEN, port=8443),
               Route("*.example.test", auth=TOKEN),
               Route("api.example.test.evil", auth=TOKEN))  # fmt: skip
    assert credential_route(p, "api.example.test", 443) is None


def test_never_from_another_grant_a_passthrough_or_plain_http() -> None:
    p = policy(Route("a.test", auth=TOKEN, source=RouteSource("grant r-1", manifest=False)),
               Route("a.test", auth=TOKEN, tls_passthrough=True),
               Route("a.test", scheme="http", port=443))  # fmt: skip
    assert credential_route(p, "a.test", 443) is None


def test_two_different_credentials_for_the_host_lend_none() -> None:
    p = policy(
        Route("a.test", paths=("/x/",), auth=TOKEN), Route("a.test", paths=("/y/",), auth=OTHER)
    )
    assert credential_route(p, "a.test", 443) is None
    same = policy(
        Route("a.test", paths=("/x/",), auth=TOKEN), Route("a.test", paths=("/y/",), auth=TOKEN)
    )
    assert credential_route(same, "a.test", 443) is not None


def test_never_a_wildcard_routes_credential_even_to_the_same_wildcard() -> None:
    # An agent asks for `*.example.test` itself: the manifest's wildcard route holds the
    # credential for its own paths on every subdomain; a grant (path `/`, any method)
    # would spread it to every path of every subdomain. A wildcard lends nothing.
    p = policy(Route("*.example.test", paths=("/public/",), auth=TOKEN))
    assert credential_route(p, "*.example.test", 443) is None
