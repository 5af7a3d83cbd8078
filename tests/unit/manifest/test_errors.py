"""Every error path of the manifest: exact field path, expectation, exit code 2."""

from __future__ import annotations

import pytest

from bot_bottle.errors import ManifestError
from bot_bottle.manifest.loader import parse_manifest

B = "bottles: {dev: %s}\nagents: {c: {bottle: dev}}"

CASES = [
    # (yaml, expected path, fragment of the message)
    (B % "{agent_provider: {tempalte: claude}}", "bottles.dev.agent_provider.tempalte", "did you mean 'template'"),
    (B % "{agent_provider: {template: gemini}}", "bottles.dev.agent_provider.template", "'claude', 'codex' or 'command'"),
    (B % "{agent_provider: {template: command}}", "bottles.dev.agent_provider", "needs `command`"),
    (B % "{agent_provider: {template: claude, command: [x]}}", "bottles.dev.agent_provider", "only applies to template `command`"),
    (B % "{agent_provider: {template: codex, auth_token: X}}", "bottles.dev.agent_provider", "`auth_token` is for template `claude`"),
    (B % "{agent_provider: {template: claude, forward_host_credentials: true}}", "bottles.dev.agent_provider", "for template `codex`"),
    (B % "{agent_provider: {template: claude, auth_token: 'not a var'}}", "bottles.dev.agent_provider.auth_token", "should match pattern"),
    (B % "{egress: {routes: [{host: 'https://x.com'}]}}", "bottles.dev.egress.routes[0].host", "expected a host name"),
    (B % "{egress: {routes: [{host: 'x.com:443'}]}}", "bottles.dev.egress.routes[0].host", "expected a host name"),
    (B % "{egress: {routes: [{host: 'a.*.com'}]}}", "bottles.dev.egress.routes[0].host", "wildcard"),
    (B % "{egress: {routes: [{host: a.com, path_allowlist: [v1]}]}}", "bottles.dev.egress.routes[0].path_allowlist", "start with `/`"),
    (B % "{egress: {routes: [{host: a.com, methods: ['G T']}]}}", "bottles.dev.egress.routes[0].methods", "HTTP method"),
    (B % "{egress: {routes: [{host: a.com}, {host: b.com, auth: {scheme: Bearer, token_rf: X}}]}}", "bottles.dev.egress.routes[1].auth.token_rf", "did you mean 'token_ref'"),
    (B % "{egress: {routes: [{host: a.com, auth: {scheme: Token, token_ref: X}}]}}", "bottles.dev.egress.routes[0].auth.scheme", "'Bearer', 'Basic' or 'header'"),
    (B % "{egress: {routes: [{host: a.com, auth: {scheme: Bearer}}]}}", "bottles.dev.egress.routes[0].auth.token_ref", "required"),
    (B % "{egress: {routes: [{host: a.com, auth: {scheme: header, token_ref: X}}]}}", "bottles.dev.egress.routes[0].auth", "`header` is required"),
    (B % "{egress: {routes: [{host: a.com, auth: {scheme: Bearer, header: X, token_ref: X}}]}}", "bottles.dev.egress.routes[0].auth", "only used with scheme `header`"),
    (B % "{egress: {routes: [{host: a.com, tls_passthrough: true, auth: {scheme: Bearer, token_ref: X}}]}}", "bottles.dev.egress.routes[0]", "tls_passthrough"),
    (B % "{egress: {routes: [{host: a.com, tls_passthrough: true, path_allowlist: [/x]}]}}", "bottles.dev.egress.routes[0]", "tls_passthrough"),
    (B % "{egress: {routes: {host: a.com}}}", "bottles.dev.egress.routes", "valid list"),
    (B % "{egress: {ssrf_ip_allowlist: [10.0.0.0/33]}}", "bottles.dev.egress.ssrf_ip_allowlist", "expected a CIDR"),
    (B % "{egress: {hosts: {a.com: not-an-ip}}}", "bottles.dev.egress.hosts", "expected an IP address"),
    (B % "{egress: {dlp: {patterns: ['(']}}}", "bottles.dev.egress.dlp.patterns", "invalid regex"),
    (B % "{egress: {dlp: {protect_env: ['1X']}}}", "bottles.dev.egress.dlp.protect_env[0]", "should match pattern"),
    (B % "{egress: {dlp: {enabld: true}}}", "bottles.dev.egress.dlp.enabld", "did you mean 'enabled'"),
    (B % "{egress: {upstream_ca: [a]}}", "bottles.dev.egress.upstream_ca", "valid string"),
    (B % "{git: {user: {nam: x}}}", "bottles.dev.git.user.nam", "did you mean 'name'"),
    (B % "{git: {remotes: [{name: o, url: u}, {name: o, url: v}]}}", "bottles.dev.git", "unique"),
    (B % "{git: {remotes: [{name: 'a b', url: u}]}}", "bottles.dev.git.remotes[0].name", "should match pattern"),
    (B % "{git: {remotes: [{name: o}]}}", "bottles.dev.git.remotes[0].url", "required"),
    (B % "{env: {A: [1]}}", "bottles.dev.env.A", "valid string"),
    (B % "{env: {A: {from_hots: X}}}", "bottles.dev.env.A.from_hots", "did you mean 'from_host'"),
    (B % "{env: {'1A': x}}", "bottles.dev.env.1A", "should match pattern"),
    # user keys that share a name with pydantic's union-branch tags stay in the path
    (B % "{env: {str: [1]}}", "bottles.dev.env.str", "valid string"),
    (B % "{env: {FromHost: {from_hots: X}}}", "bottles.dev.env.FromHost.from_hots", "did you mean 'from_host'"),
    (B % "{secret_env: A}", "bottles.dev.secret_env", "valid list"),
    (B % "{workspace: copi}", "bottles.dev.workspace.mode", "'mount', 'copy' or 'none'"),
    (B % "{backend: podman}", "bottles.dev.backend", "'auto', 'namespace', 'docker' or 'microvm'"),
    (B % "{resources: {cpus: -1}}", "bottles.dev.resources.cpus", "between 0.01 and 1024 CPUs"),
    (B % "{resources: {memory: lots}}", "bottles.dev.resources.memory", "expected a memory size"),
    (B % "{supervise: {enabled: maybe}}", "bottles.dev.supervise.enabled", "valid boolean"),
    (B % "{extends: nope}", "bottles.dev.extends", "no bottle named 'nope'"),
    (B % "{extends: dev}", "bottles.dev.extends", "cycle"),
    (B % "{extends: [x]}", "bottles.dev.extends", "expected a bottle name"),
    (B % "{egres: {}}", "bottles.dev.egres", "did you mean 'egress'"),
    ("bottles: {dev: {}}\nagents: {c: {bottle: dve}}", "agents.c.bottle", "no bottle named 'dve'"),
    ("bottles: {dev: {}}\nagents: {c: {bottle: dev, prompt: a, prompt_file: b}}", "agents.c", "not both"),
    ("bottles: {dev: {}}\nagents: {c: {bottle: dev, git: {remotes: []}}}", "agents.c.git.remotes", "carries trust"),
    ("bottles: {dev: {}}\nagents: {c: {bottle: dev, skills: skill}}", "agents.c.skills", "valid list"),
    ("bottles: {dev: {}}\nagents: {c: {}}", "agents.c.bottle", "required"),
    ("bottle: {}", "bottle", "did you mean 'bottles'"),
    ("bottles: [1]", "bottles", "valid dictionary"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "path", "fragment"), CASES, ids=[c[1] + ":" + c[2][:20] for c in CASES]
)
def test_error_names_path_and_expectation(text: str, path: str, fragment: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(text)
    err = info.value
    assert err.path == path or str(err).startswith(path), str(err)
    assert fragment in str(err)
    assert err.exit_code == 2


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a: [", "not valid YAML at line"),
        ("bottles: {dev: {}, dev: {}}", "duplicate key 'dev'"),
        ("- a\n- b", "expected a mapping"),
        ("bottles: !!python/object:os.system {}", "not valid YAML"),
    ],
)
def test_unparseable_documents(text: str, fragment: str) -> None:
    with pytest.raises(ManifestError, match=None) as info:
        parse_manifest(text)
    assert fragment in str(info.value)


def test_found_value_is_reported() -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(B % "{backend: podman}")
    assert "found str 'podman'" in str(info.value)


def test_empty_document_is_an_empty_manifest() -> None:
    m = parse_manifest("")
    assert m.bottles == {} and m.agents == {}
