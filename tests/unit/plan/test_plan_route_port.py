"""Route scheme and port reach the plan; provider routes stay https:443."""

from __future__ import annotations

from collections.abc import Callable

from bot_bottle.manifest.loader import LoadedManifest
from bot_bottle.plan.resolver import resolve

B = "bottles: {dev: {egress: {routes: [%s]}}}\nagents: {c: {bottle: dev}}"


def test_plan_carries_scheme_and_port(loaded: Callable[[str], LoadedManifest]) -> None:
    plan = resolve(loaded(B % "{host: a.com, scheme: http, port: 8080}, {host: b.com}"), "c", {})
    assert [(r.scheme, r.port) for r in plan.egress.routes] == [("http", 8080), ("https", 443)]


def test_provider_route_is_separate_from_other_port(
    loaded: Callable[[str], LoadedManifest],
) -> None:
    text = (
        "bottles: {dev: {agent_provider: {template: claude, auth_token: TOK}, egress: {routes: "
        "[{host: api.anthropic.com, scheme: http, port: 8080}]}}}\nagents: {c: {bottle: dev}}"
    )
    plan = resolve(loaded(text), "c", {})
    by_port = {(r.scheme, r.port): r for r in plan.egress.routes}
    assert by_port[("https", 443)].auth is not None
    assert by_port[("http", 8080)].auth is None


def test_summary_shows_scheme_and_port(loaded: Callable[[str], LoadedManifest]) -> None:
    from rich.console import Console

    from bot_bottle.cli.summary import plan_dict, render_plan

    plan = resolve(loaded(B % "{host: a.com, scheme: http, port: 8080}, {host: b.com}"), "c", {})
    console = Console(width=200, record=True)
    console.print(render_plan(plan))
    text = console.export_text()
    assert "http://a.com:8080" in text and "https://b.com" not in text
    assert [(r["scheme"], r["port"]) for r in plan_dict(plan)["routes"]] == [
        ("http", 8080),
        ("https", 443),
    ]
