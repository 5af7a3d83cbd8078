from __future__ import annotations

import pytest

from bot_bottle.errors import ManifestError
from bot_bottle.manifest.loader import parse_manifest


def test_child_wins_per_field_and_maps_merge() -> None:
    m = parse_manifest(
        """
bottles:
  base:
    agent_provider: {template: codex, forward_host_credentials: true}
    env: {A: base, B: base}
    git: {user: {name: Base, email: base@x}}
    egress: {routes: [{host: a.com}, {host: b.com}], ssrf_ip_allowlist: [10.0.0.0/8]}
  mid:
    extends: base
    env: {B: mid}
    git: {user: {email: mid@x}}
  leaf:
    extends: mid
    egress: {routes: [{host: c.com}]}
"""
    )
    leaf = m.bottles["leaf"]
    assert leaf.agent_provider.template == "codex"
    assert leaf.env == {"A": "base", "B": "mid"}
    assert leaf.git.user.name == "Base" and leaf.git.user.email == "mid@x"
    # lists are replaced whole: a child that narrows routes really narrows them
    assert [r.host for r in leaf.egress.routes] == ["c.com"]
    assert leaf.egress.ssrf_ip_allowlist == ["10.0.0.0/8"]
    assert [r.host for r in m.bottles["mid"].egress.routes] == ["a.com", "b.com"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("bottles: {a: {extends: b}, b: {extends: c}, c: {extends: a}}", "cycle"),
        ("bottles: {a: {extends: a}}", "cycle: a -> a"),
        ("bottles: {a: {extends: bse}, base: {}}", "did you mean 'base'"),
    ],
)
def test_bad_parents(text: str, fragment: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(text)
    assert fragment in str(info.value)
    assert "extends" in info.value.path


def test_error_in_inherited_field_names_the_child() -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest("bottles: {base: {}, dev: {extends: base, egress: {routs: []}}}")
    assert info.value.path == "bottles.dev.egress.routs"
