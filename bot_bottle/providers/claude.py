"""Claude Code: `claude`, prompt through --append-system-prompt, OAuth via egress."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot_bottle.providers.base import Contribution, NoHostState, ProviderRoute, ProvisionFile

if TYPE_CHECKING:  # the schema (pydantic) stays out of the launch path
    from bot_bottle.manifest.model import AgentProviderSpec

API_HOST = "api.anthropic.com"
PLACEHOLDER = "egress-placeholder"
TOKEN_ENV = "CLAUDE_CODE_OAUTH_TOKEN"
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
        if spec.auth_token:
            # Claude Code only sends `Authorization: Bearer` when it believes it has an
            # OAuth token; the placeholder makes it do so, and egress swaps in the real one.
            env[TOKEN_ENV] = PLACEHOLDER
            hidden = frozenset({TOKEN_ENV})
            routes = (ProviderRoute(API_HOST, "Bearer", spec.auth_token),)
        # Skip the first-run onboarding screens: nobody is there to click through them.
        state = {"hasCompletedOnboarding": True, "bypassPermissionsModeAccepted": True}
        files = (ProvisionFile("~/.claude.json", json.dumps(state).encode(), 0o600),)
        return Contribution(
            routes=routes, env=env, hidden_env=hidden, files=files, image="claude",
            skills_dir="~/.claude/skills", expected_denials=EXPECTED_DENIALS,
        )  # fmt: skip

    def argv(self, spec: AgentProviderSpec, prompt: str, extra: Sequence[str]) -> tuple[str, ...]:
        head = ("claude", "--append-system-prompt", prompt) if prompt else ("claude",)
        return (*head, *extra)
