from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot_bottle.errors import CredentialError, ManifestError
from bot_bottle.manifest.loader import LoadedManifest
from bot_bottle.plan.materialize import materialize
from bot_bottle.plan.resolver import resolve
from bot_bottle.policy.egress_policy import EgressPolicy

Loader = Callable[[str], LoadedManifest]


@pytest.mark.parametrize(
    ("bottle_user", "agent_user", "name", "email"),
    [
        ("{}", "{}", ("bot-bottle agent", "default"), ("agent@bot-bottle.invalid", "default")),
        ("{name: B, email: b@x}", "{}", ("B", "bottle"), ("b@x", "bottle")),
        ("{name: B, email: b@x}", "{email: a@x}", ("B", "bottle"), ("a@x", "agent")),
        ("{name: B}", "{name: A}", ("A", "agent"), ("agent@bot-bottle.invalid", "default")),
    ],
)
def test_identity_provenance_per_field(
    loaded: Loader, bottle_user: str, agent_user: str, name: tuple[str, str], email: tuple[str, str]
) -> None:
    text = (
        f"bottles: {{dev: {{git: {{user: {bottle_user}}}}}}}\n"
        f"agents: {{c: {{bottle: dev, git: {{user: {agent_user}}}}}}}"
    )
    ident = resolve(loaded(text), "c", {}).git_identity
    assert ident.name is not None and (ident.name.value, ident.name.source) == name
    assert ident.email is not None and (ident.email.value, ident.email.source) == email


def test_unknown_agent(loaded: Loader) -> None:
    with pytest.raises(ManifestError, match="no agent named 'x'"):
        resolve(loaded("bottles: {dev: {}}\nagents: {c: {bottle: dev}}"), "x", {})


@pytest.mark.parametrize(
    "name",
    ["HTTPS_PROXY", "no_proxy", "all_proxy", "NODE_EXTRA_CA_CERTS", "CURL_CA_BUNDLE", "HOME"],
)
def test_reserved_env_rejected(loaded: Loader, name: str) -> None:
    with pytest.raises(ManifestError) as info:
        resolve(
            loaded(f"bottles: {{dev: {{env: {{{name}: x}}}}}}\nagents: {{c: {{bottle: dev}}}}"),
            "c",
            {},
        )
    assert info.value.path == f"bottles.dev.env.{name}"


def test_provider_placeholder_cannot_be_overridden(loaded: Loader) -> None:
    text = (
        "bottles: {dev: {agent_provider: {template: claude, auth_token: T},"
        " env: {CLAUDE_CODE_OAUTH_TOKEN: real}}}\nagents: {c: {bottle: dev}}"
    )
    with pytest.raises(ManifestError, match="egress injects the real credential"):
        resolve(loaded(text), "c", {})


def test_secret_env_hidden_from_summary(loaded: Loader) -> None:
    text = "bottles: {dev: {env: {A: x, S: {from_host: H}}, secret_env: [S]}}\nagents: {c: {bottle: dev}}"
    plan = resolve(loaded(text), "c", {})
    assert "A" in plan.visible_env_names() and "S" not in plan.visible_env_names()


def test_prompt_file_relative_to_manifest(loaded: Loader, tmp_path: Path) -> None:
    (tmp_path / "p.md").write_text("be careful")
    text = "bottles: {dev: {agent_provider: {template: claude}}}\nagents: {c: {bottle: dev, prompt_file: p.md}}"
    plan = resolve(loaded(text), "c", {})
    assert plan.argv == ("claude", "--append-system-prompt", "be careful")


def test_missing_prompt_file_names_field(loaded: Loader) -> None:
    text = "bottles: {dev: {}}\nagents: {c: {bottle: dev, prompt_file: nope.md}}"
    with pytest.raises(ManifestError) as info:
        resolve(loaded(text), "c", {})
    assert info.value.path == "agents.c.prompt_file"


def test_missing_skill_names_field(loaded: Loader, tmp_path: Path) -> None:
    text = "bottles: {dev: {}}\nagents: {c: {bottle: dev, skills: [a]}}"
    with pytest.raises(ManifestError) as info:
        resolve(loaded(text), "c", {"BOT_BOTTLE_SKILLS_DIR": str(tmp_path)})
    assert info.value.path == "agents.c.skills[0]"


def test_materialize_reads_values_only_at_launch(loaded: Loader) -> None:
    text = (
        "bottles: {dev: {egress: {routes: [{host: a.com, auth: {scheme: Bearer, token_ref: TOK}}],"
        " dlp: {protect_env: [DBPW]}}, env: {E: {from_host: HE}}}}\nagents: {c: {bottle: dev}}"
    )
    plan = resolve(loaded(text), "c", {})
    inputs = materialize(plan, {"TOK": "s3cr3t-value-1", "DBPW": "dbpw-value-22", "HE": "h"})
    assert inputs.sidecar_env == {
        "EGRESS_TOKEN_0": "s3cr3t-value-1",
        "EGRESS_PROTECT_0": "dbpw-value-22",
    }
    assert inputs.agent_env["E"] == "h"
    assert "s3cr3t" not in repr(inputs) and "s3cr3t" not in inputs.policy.to_json()
    # the canaries planted in the bottle are the ones egress watches for
    (aws,) = [f for f in inputs.files if f.path == "~/.aws/credentials"]
    assert all(c.encode() in aws.content for c in inputs.policy.dlp.canaries)
    assert EgressPolicy.from_json(inputs.policy.to_json()) == inputs.policy


def test_missing_credential_names_variable(loaded: Loader) -> None:
    text = "bottles: {dev: {egress: {routes: [{host: a.com, auth: {scheme: Bearer, token_ref: TOK}}]}}}\nagents: {c: {bottle: dev}}"
    plan = resolve(loaded(text), "c", {})
    with pytest.raises(CredentialError) as info:
        materialize(plan, {})
    assert "TOK" in str(info.value) and "a.com" in str(info.value) and info.value.exit_code == 2


def test_git_remote_token_goes_to_the_gate_only(loaded: Loader) -> None:
    text = (
        "bottles: {dev: {git: {remotes: ["
        "{name: origin, url: 'https://git.example.com/o/r.git', token_ref: GIT_TOK},"
        "{name: local, url: /srv/r.git}]}}}\nagents: {c: {bottle: dev}}"
    )
    plan = resolve(loaded(text), "c", {})
    assert plan.git_remotes[0].token_ref == "GIT_TOK" and plan.git_remotes[1].token_ref == ""
    inputs = materialize(plan, {"GIT_TOK": "gh-token-value-123"})
    assert inputs.gate_env == {"GIT_GATE_TOKEN_0": "gh-token-value-123"}
    assert "gh-token-value-123" not in repr(inputs) + str(inputs.agent_env) + str(
        inputs.sidecar_env
    )
    with pytest.raises(CredentialError) as info:
        materialize(plan, {})
    assert "GIT_TOK" in str(info.value) and "origin" in str(info.value)


@pytest.mark.parametrize("template", ["claude", "codex"])
def test_provider_background_calls_reach_egress_as_expected_denials(
    loaded: Loader, template: str
) -> None:
    """Each provider marks its CLI's own background calls; they travel in the routes
    file (and survive its round trip) but allow nothing."""
    text = f"bottles: {{dev: {{agent_provider: {{template: {template}}}}}}}\nagents: {{c: {{bottle: dev}}}}"
    plan = resolve(loaded(text), "c", {})
    assert plan.egress.expected_denials
    assert not {r.host for r in plan.egress.routes} & {
        e.partition("/")[0] for e in plan.egress.expected_denials
    }
    assert EgressPolicy.from_json(plan.egress.to_json()) == plan.egress


def test_expected_denials_validated() -> None:
    doc = {"version": 1, "expected_denials": ["ok.example.com/a", "bad host/x"]}
    with pytest.raises(ValueError, match=r"expected_denials\[1\]"):
        EgressPolicy.from_dict(doc)
