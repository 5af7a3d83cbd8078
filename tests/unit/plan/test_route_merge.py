"""Provider routes: add, upgrade, keep, conflict."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot_bottle.errors import ManifestError
from bot_bottle.manifest.loader import LoadedManifest
from bot_bottle.plan.resolver import resolve
from bot_bottle.policy.egress_policy import EgressPolicy, RouteSource

Loader = Callable[[str], LoadedManifest]
CLAUDE = "agent_provider: {template: claude, auth_token: CLAUDE_TOK}"
CODEX = "agent_provider: {template: codex, forward_host_credentials: true}"


def manifest(provider: str, routes: str = "[]") -> str:
    return f"bottles: {{dev: {{{provider}, egress: {{routes: {routes}}}}}}}\nagents: {{c: {{bottle: dev}}}}"


def test_add_when_manifest_has_no_route(loaded: Loader) -> None:
    plan = resolve(loaded(manifest(CLAUDE, "[{host: pypi.org}]")), "c", {})
    first = plan.egress.routes[0]
    assert first.host == "api.anthropic.com" and first.source == RouteSource(
        "claude", manifest=False
    )
    assert first.auth is not None and first.auth.scheme == "Bearer"
    assert plan.token_slots[0].ref == "CLAUDE_TOK" and plan.token_slots[0].source == "claude"
    assert str(first.source) == "claude"


def test_upgrade_keeps_path_limits(loaded: Loader) -> None:
    plan = resolve(
        loaded(manifest(CLAUDE, "[{host: api.anthropic.com, path_allowlist: [/v1/]}]")), "c", {}
    )
    (route,) = plan.egress.routes
    assert route.paths == ("/v1/",) and route.source == RouteSource("claude")
    assert str(route.source) == "manifest+claude" and plan.token_slots[0].source == "claude"
    assert route.auth is not None and route.auth.slot == "EGRESS_TOKEN_0"


def test_same_auth_is_kept(loaded: Loader) -> None:
    same = "[{host: api.anthropic.com, auth: {scheme: Bearer, token_ref: CLAUDE_TOK}}]"
    plan = resolve(loaded(manifest(CLAUDE, same)), "c", {})
    assert len(plan.egress.routes) == 1 and plan.egress.routes[0].source == RouteSource()
    assert str(RouteSource()) == "manifest" and plan.token_slots[0].source == "manifest"


@pytest.mark.parametrize(
    "routes",
    [
        "[{host: pypi.org}, {host: api.anthropic.com, auth: {scheme: Bearer, token_ref: OTHER}}]",
        "[{host: pypi.org}, {host: api.anthropic.com, auth: {scheme: header, header: x-api-key, token_ref: CLAUDE_TOK}}]",
        "[{host: pypi.org}, {host: api.anthropic.com, tls_passthrough: true}]",
    ],
)
def test_conflict_names_the_route(loaded: Loader, routes: str) -> None:
    with pytest.raises(ManifestError) as info:
        resolve(loaded(manifest(CLAUDE, routes)), "c", {})
    assert info.value.path.startswith("bottles.dev.egress.routes[1]")
    assert "conflicts with the claude provider" in str(info.value)


def test_codex_adds_both_hosts_sharing_one_slot(loaded: Loader) -> None:
    plan = resolve(
        loaded(manifest(CODEX, "[{host: chatgpt.com, path_allowlist: [/backend-api/]}]")), "c", {}
    )
    hosts = {r.host: r for r in plan.egress.routes}
    assert set(hosts) == {"api.openai.com", "chatgpt.com"}
    assert hosts["chatgpt.com"].paths == ("/backend-api/",)
    assert len(plan.token_slots) == 1
    assert {r.auth.slot for r in plan.egress.routes if r.auth} == {"EGRESS_TOKEN_0"}


def test_provider_route_precedes_manifest_wildcard(loaded: Loader) -> None:
    plan = resolve(
        loaded(
            manifest(CODEX, "['*.openai.com']".replace("'*.openai.com'", "{host: '*.openai.com'}"))
        ),
        "c",
        {},
    )
    assert plan.egress.routes[0].host == "api.openai.com"


def test_slots_are_numbered_per_distinct_ref(loaded: Loader) -> None:
    routes = (
        "[{host: a.com, auth: {scheme: Bearer, token_ref: A}},"
        " {host: b.com, auth: {scheme: Bearer, token_ref: B}},"
        " {host: c.com, auth: {scheme: Basic, token_ref: A}}]"
    )
    plan = resolve(loaded(manifest("agent_provider: {template: claude}", routes)), "c", {})
    assert [(t.slot, t.ref) for t in plan.token_slots] == [
        ("EGRESS_TOKEN_0", "A"),
        ("EGRESS_TOKEN_1", "B"),
    ]
    assert "A" not in plan.egress.to_json() and "EGRESS_TOKEN_0" in plan.egress.to_json()


@pytest.mark.parametrize(
    "source", [RouteSource(), RouteSource("claude"), RouteSource("codex", manifest=False)]
)
def test_the_routes_file_keeps_the_source_as_text(source: RouteSource) -> None:
    from bot_bottle.policy.egress_policy import Route

    text = EgressPolicy("b", routes=(Route("example.com", source=source),)).to_json()
    assert f'"source": "{source}"' in text
    assert EgressPolicy.from_json(text).routes[0].source == source


@pytest.mark.parametrize("text", ["", "+claude", "manifest+", "claude+manifest", "a+b+c", 7])
def test_a_source_the_launcher_never_writes_is_refused(text: object) -> None:
    raw = {"version": 1, "routes": [{"host": "example.com", "source": text}]}
    with pytest.raises(ValueError, match=r"routes\[0\]\.source"):
        EgressPolicy.from_dict(raw)
