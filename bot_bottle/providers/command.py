"""The generic `command` template: runs the manifest's argv, so any agent or script fits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot_bottle.providers.base import (
    Contribution,
    McpServer,
    McpWiring,
    NoHostState,
    ProvisionFile,
)

if TYPE_CHECKING:  # the schema (pydantic) stays out of the launch path
    from bot_bottle.manifest.model import AgentProviderSpec

PROMPT_PATH = "~/.bot-bottle/prompt.txt"


class CommandProvider(NoHostState):
    name = "command"
    continue_args: tuple[str, ...] = ()
    credential_hint = ""

    def contribute(self, spec: AgentProviderSpec, prompt: str) -> Contribution:
        if not prompt:
            return Contribution()
        return Contribution(
            env={"BOT_BOTTLE_PROMPT_FILE": PROMPT_PATH.replace("~", "$HOME", 1)},
            files=(ProvisionFile(PROMPT_PATH, prompt.encode(), 0o644),),
        )

    def argv(self, spec: AgentProviderSpec, prompt: str, extra: Sequence[str]) -> tuple[str, ...]:
        return (*(spec.command or ()), *extra)

    def mcp(self, servers: Sequence[McpServer]) -> McpWiring:
        return McpWiring()  # an arbitrary command reads no MCP config
