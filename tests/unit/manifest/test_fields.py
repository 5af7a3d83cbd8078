"""Valid values of every field land where the plan expects them."""

from __future__ import annotations

from bot_bottle.manifest.loader import parse_manifest

FULL = """
bottles:
  dev:
    agent_provider: {template: claude, auth_token: CLAUDE_TOK, dockerfile: Dockerfile.agent}
    egress:
      routes:
        - host: API.GitHub.com.
          path_allowlist: [/repos/]
          methods: [get, post]
          auth: {scheme: Bearer, token_ref: GH_TOKEN}
        - host: '*.example.com'
          auth: {scheme: header, header: X-Api-Key, token_ref: EX_KEY}
        - host: pypi.org
          tls_passthrough: true
      ssrf_ip_allowlist: [10.1.0.0/16]
      hosts: {Internal.Test: 10.1.2.3}
      upstream_ca: ca.pem
      dlp: {enabled: true, patterns: ['corp-[0-9]{6}'], protect_env: [DB_PASSWORD]}
    git:
      user: {name: Bot, email: bot@example.com}
      remotes:
        - {name: origin, url: 'git@github.com:o/r.git', protected_refs: [refs/heads/main], allowed_refs: ['refs/heads/agent/*']}
    env: {PORT: 8080, DEBUG: true, TOKEN: {from_host: MY_TOKEN}}
    secret_env: [TOKEN]
    workspace: copy
    backend: namespace
    resources: {cpus: 1.5, memory: 2g}
    supervise: true
agents:
  coder:
    bottle: dev
    prompt: hello
    skills: [review]
    git: {user: {email: coder@example.com}}
"""


def test_every_field_parses() -> None:
    m = parse_manifest(FULL)
    b = m.bottles["dev"]
    r0, r1, r2 = b.egress.routes
    assert r0.host == "api.github.com" and r0.methods == ["GET", "POST"]
    assert r0.auth is not None and r0.auth.token_ref == "GH_TOKEN"
    assert r1.host == "*.example.com" and r1.auth is not None and r1.auth.header == "X-Api-Key"
    assert r2.tls_passthrough
    assert b.egress.hosts == {"internal.test": "10.1.2.3"}
    assert b.egress.dlp.protect_env == ["DB_PASSWORD"]
    assert b.env["PORT"] == "8080" and b.env["DEBUG"] == "true"
    assert b.workspace.mode == "copy" and b.supervise.enabled
    assert b.resources.cpus == 1.5 and b.resources.memory == "2g"
    assert b.git.remotes[0].allowed_refs == ["refs/heads/agent/*"]
    assert m.agents["coder"].git.user.email == "coder@example.com"


def test_defaults() -> None:
    m = parse_manifest("bottles: {dev: {}}\nagents: {c: {bottle: dev}}")
    b = m.bottles["dev"]
    assert b.agent_provider.template == "claude"
    assert b.workspace.mode == "mount" and b.workspace.path == "."
    assert b.backend == "auto" and b.egress.dlp.enabled and b.egress.routes == []
