"""OpenAI Codex CLI: `codex`, prompt as global AGENTS.md, host ChatGPT login via egress."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from bot_bottle.providers import codex_auth
from bot_bottle.providers.base import (
    Contribution,
    McpServer,
    McpWiring,
    ProviderOptions,
    ProviderRoute,
    ProvisionFile,
)

if TYPE_CHECKING:  # the schema (pydantic) stays out of the launch path
    from bot_bottle.manifest.model import AgentProviderSpec

# Codex in ChatGPT mode talks to chatgpt.com/backend-api; API-key mode to api.openai.com.
API_HOSTS = ("api.openai.com", "chatgpt.com")
# Not a host env var: the provider reads this credential from the host's auth.json.
HOST_TOKEN_REF = "CODEX_HOST_ACCESS_TOKEN"
AUTH_FILE = "~/.codex/auth.json"
# Codex's own background traffic, turned off through its config (`-c key=value` on the
# command line, so a config.toml in the bottle stays the operator's): usage analytics
# (chatgpt.com/backend-api/codex/analytics-events), OpenTelemetry metrics
# (ab.chatgpt.com/otlp), feedback uploads, and the startup update check.
QUIET_CONFIG = (
    "analytics.enabled=false",
    'otel.metrics_exporter="none"',
    "feedback.enabled=false",
    "check_for_update_on_startup=false",
)
# What Codex still fetches on its own (the TUI's announcement tip, the curated plugins
# sync, the release check, telemetry where the settings above do not reach): denied
# like anything else, marked expected so the denial list shows the agent's own asks.
EXPECTED_DENIALS = (
    "ab.chatgpt.com",
    "raw.githubusercontent.com/openai/codex",
    "api.github.com/repos/openai/codex/releases",
    "api.github.com/repos/openai/plugins",
    "github.com/openai/plugins",
    "github.com/openai/plugins.git",
)


class CodexProvider:
    name = "codex"
    # codex 0.171: the most recent session, without the picker
    continue_args: tuple[str, ...] = ("resume", "--last")
    credential_hint = "a ChatGPT login: `bot-bottle agents exec codex -- login`"

    def contribute(self, spec: AgentProviderSpec, prompt: str) -> Contribution:
        files: list[ProvisionFile] = []
        if prompt:
            # Codex has no system-prompt flag; it reads global instructions from here.
            files.append(ProvisionFile("~/.codex/AGENTS.md", prompt.encode(), 0o644))
        routes: tuple[ProviderRoute, ...] = ()
        if spec.forward_host_credentials:
            routes = tuple(ProviderRoute(h, "Bearer", HOST_TOKEN_REF) for h in API_HOSTS)
        return Contribution(
            routes=routes,
            files=tuple(files),
            image="codex",
            skills_dir="~/.codex/skills",
            expected_denials=EXPECTED_DENIALS,
        )

    def argv(self, spec: AgentProviderSpec, prompt: str, extra: Sequence[str]) -> tuple[str, ...]:
        quiet = tuple(x for kv in QUIET_CONFIG for x in ("-c", kv))
        return ("codex", *quiet, *extra)

    def mcp(self, servers: Sequence[McpServer]) -> McpWiring:
        """`[mcp_servers.NAME]` as `-c` overrides, like QUIET_CONFIG. A call waits for a
        human, so its timeout is an hour (Codex's default gives up after a minute); its
        tools are approved (a call only asks the operator; `codex exec` could not ask);
        Codex starts servers with a scrubbed environment, so `env_vars` pass through."""
        args: list[str] = []
        for s in servers:
            key = f"mcp_servers.{s.name}"
            for kv in (f"{key}.command={json.dumps(s.command)}",
                       f"{key}.args={json.dumps(list(s.args))}",
                       f"{key}.tool_timeout_sec=3600",
                       f'{key}.default_tools_approval_mode="approve"',
                       f"{key}.env_vars={json.dumps(list(s.env_vars))}"):  # fmt: skip
                args += ["-c", kv]
        return McpWiring(args=tuple(args))

    def launch_secrets(
        self, options: ProviderOptions, host_env: Mapping[str, str]
    ) -> dict[str, str]:
        if not options.forward_host_credentials:
            return {}
        _, token = codex_auth.read_host_auth(host_env)
        return {HOST_TOKEN_REF: token}

    def launch_files(
        self, options: ProviderOptions, host_env: Mapping[str, str]
    ) -> tuple[ProvisionFile, ...]:
        if not options.forward_host_credentials:
            return ()
        raw, _ = codex_auth.read_host_auth(host_env)
        body = json.dumps(codex_auth.placeholder_auth(raw), indent=2) + "\n"
        return (ProvisionFile(AUTH_FILE, body.encode(), 0o600),)
