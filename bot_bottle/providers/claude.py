"""Claude Code: `claude`, prompt through --append-system-prompt, OAuth token or API key
injected by egress; its own config merged so it starts ready to work."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bot_bottle.providers.base import (
    WORKSPACE_KEY,
    Contribution,
    McpServer,
    McpWiring,
    NoHostState,
    ProviderRoute,
    ProvisionFile,
)

if TYPE_CHECKING:  # the schema (pydantic) stays out of the launch path
    from bot_bottle.manifest.model import AgentProviderSpec

API_HOST = "api.anthropic.com"
PLACEHOLDER = "egress-placeholder"
TOKEN_ENV = "CLAUDE_CODE_OAUTH_TOKEN"
KEY_ENV = "ANTHROPIC_API_KEY"
# Looks like a key to Claude Code, is worth nothing: egress strips it and injects the
# real one. Claude asks once whether to use a key it finds in its environment, and
# remembers the answer by the key's last 20 characters (`customApiKeyResponses`).
PLACEHOLDER_KEY = "sk-ant-api03-egress-placeholder-not-a-real-key-0000000000000000"
CONFIG = "~/.claude.json"
SETTINGS = "~/.claude/settings.json"
# What Claude Code fetches on its own when a setting does not stop it: update checks and
# the official plugin marketplace (a download, or a git clone from GitHub). Denied like
# anything else, marked expected so the operator's denial list shows the agent's asks.
EXPECTED_DENIALS = (
    "downloads.claude.ai/claude-code-releases",
    "github.com/anthropics/claude-plugins-official",
    "github.com/anthropics/claude-plugins-official.git",
    "api.github.com/repos/anthropics/claude-plugins-official",
)


class ClaudeProvider(NoHostState):
    name = "claude"
    continue_args: tuple[str, ...] = ("--continue",)
    credential_hint = (
        "an OAuth token from `bot-bottle agents exec claude -- setup-token`, or with "
        "`api_key:` an Anthropic API key"
    )

    def contribute(self, spec: AgentProviderSpec, prompt: str) -> Contribution:
        env = {
            # Telemetry, error reports, auto-update and the official plugin marketplace
            # go to hosts egress does not route (or, on api.anthropic.com, carry nothing
            # the task needs); turning them off avoids a stream of denials.
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_UPDATES": "1",
            "CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL": "1",
        }
        routes: tuple[ProviderRoute, ...] = ()
        hidden: frozenset[str] = frozenset()
        config = ready_config()
        if spec.auth_token:
            # Claude Code only sends `Authorization: Bearer` when it believes it has an
            # OAuth token; the placeholder makes it do so, and egress swaps in the real one.
            env[TOKEN_ENV] = PLACEHOLDER
            hidden = frozenset({TOKEN_ENV})
            routes = (ProviderRoute(API_HOST, "Bearer", spec.auth_token),)
        elif spec.api_key:
            env[KEY_ENV] = PLACEHOLDER_KEY
            hidden = frozenset({KEY_ENV})
            routes = (ProviderRoute(API_HOST, "header", spec.api_key, "x-api-key"),)
            # Pre-answer "Detected a custom API key": unanswered, the TUI waits on it, and
            # `-p` runs end in "Not logged in".
            config["customApiKeyResponses"] = {"approved": [PLACEHOLDER_KEY[-20:]], "rejected": []}
        files = (ProvisionFile(CONFIG, json.dumps(config).encode(), 0o600, merge_json=True),)
        return Contribution(
            routes=routes, env=env, hidden_env=hidden, files=files, image="claude",
            skills_dir="~/.claude/skills", expected_denials=EXPECTED_DENIALS,
        )  # fmt: skip

    def argv(self, spec: AgentProviderSpec, prompt: str, extra: Sequence[str]) -> tuple[str, ...]:
        head = ("claude", "--append-system-prompt", prompt) if prompt else ("claude",)
        return (*head, *extra)

    def mcp(self, servers: Sequence[McpServer]) -> McpWiring:
        """User-scope servers in `~/.claude.json` (Claude starts them without the trust
        dialog a project's `.mcp.json` gets), their tools allowed in its settings: with
        `-p` nobody could approve a call, and a call only asks the operator anyway.
        Claude names each tool `mcp__SERVER__TOOL`."""
        if not servers:
            return McpWiring()
        # `alwaysLoad`: offered with the built-in tools, not deferred behind ToolSearch
        # (Claude 2.1 defers MCP tools), so the agent sees them on its first turn.
        config = {"mcpServers": {s.name: {"type": "stdio", "command": s.command,
                                          "args": list(s.args), "env": {}, "alwaysLoad": True}
                                 for s in servers}}  # fmt: skip
        allow = [f"mcp__{s.name}__{t}" for s in servers for t in s.tools]
        settings = {"permissions": {"allow": allow}}
        return McpWiring(files=(
            ProvisionFile(CONFIG, json.dumps(config).encode(), 0o600, merge_json=True),
            ProvisionFile(SETTINGS, json.dumps(settings).encode(), 0o644, merge_json=True),
        ))  # fmt: skip


def ready_config() -> dict[str, Any]:
    """What the bottle already guarantees, pre-answered in `~/.claude.json`: nobody is
    there to click through onboarding, and the workspace is the agent's to work in
    (the bottle, not a dialog, is what contains it). Merged over Claude's own file, so
    its conversation history and settings survive `resume`."""
    return {
        "hasCompletedOnboarding": True,
        "bypassPermissionsModeAccepted": True,
        "projects": {
            WORKSPACE_KEY: {"hasTrustDialogAccepted": True, "hasCompletedProjectOnboarding": True}
        },
    }
