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


class ClaudeProvider(NoHostState):
    name = "claude"

    def contribute(self, spec: AgentProviderSpec, prompt: str) -> Contribution:
        env = {
            # Telemetry, error reports and auto-update go to hosts egress does not
            # route; turning them off avoids a stream of denials in the audit log.
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "DISABLE_AUTOUPDATER": "1",
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
            skills_dir="~/.claude/skills",
        )  # fmt: skip

    def argv(self, spec: AgentProviderSpec, prompt: str, extra: Sequence[str]) -> tuple[str, ...]:
        head = ("claude", "--append-system-prompt", prompt) if prompt else ("claude",)
        return (*head, *extra)
