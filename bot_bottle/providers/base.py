"""What a provider (Claude, Codex, a generic command) contributes to a bottle.

Backends and sidecars see only the generic values here: routes, env, files, argv.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from bot_bottle.policy.egress_policy import AuthScheme

if TYPE_CHECKING:  # the schema (pydantic) stays out of the launch path
    from bot_bottle.manifest.model import AgentProviderSpec


@dataclass(frozen=True)
class ProviderOptions:
    """The launch options a provider reads from the plan (typed, not strings)."""

    forward_host_credentials: bool = False

    def lines(self) -> tuple[tuple[str, str], ...]:
        """As the approval review shows them (name, value), in a stable order."""
        return (("forward_host_credentials", str(self.forward_host_credentials).lower()),)


# In a `merge_json` file, a key that stands for the bottle's workspace path, which only
# the backend knows (providers contribute files before a backend is chosen).
WORKSPACE_KEY = "{bot-bottle:workspace}"


@dataclass(frozen=True)
class ProvisionFile:
    """A file placed in the bottle. `path` is absolute, or starts with `~/` for the
    bottle's HOME. Content here is never a secret (placeholders and decoys only).
    With `merge_json`, `content` is a JSON object merged over the agent's own file at
    `path` (bot-bottle's keys win; see `provision.config_merge`), so state the agent
    keeps there (trust, history pointers) survives `resume`."""

    path: str
    content: bytes
    mode: int = 0o644
    merge_json: bool = False


@dataclass(frozen=True)
class ProviderRoute:
    """A route the provider owns: egress injects `token_ref`'s value on `host`."""

    host: str
    scheme: AuthScheme
    token_ref: str
    header: str = ""


@dataclass(frozen=True)
class McpServer:
    """A stdio MCP server the agent itself starts inside the bottle (`command`, found on
    the bottle's PATH, with `args`); `tools` are its tools, pre-approved for the agent
    (each call only asks the operator, who is the one who decides); `env_vars` name the
    bottle's variables it needs from the agent's environment (an agent that starts its
    servers with a scrubbed environment must pass these through)."""

    name: str
    command: str
    args: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()
    env_vars: tuple[str, ...] = ()


@dataclass(frozen=True)
class McpWiring:
    """How a provider tells its agent about MCP servers: files merged into its config,
    and arguments placed before the user's on its command line."""

    files: tuple[ProvisionFile, ...] = ()
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Contribution:
    """Plan-time, non-secret additions a provider makes to a bottle."""

    routes: tuple[ProviderRoute, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    hidden_env: frozenset[str] = frozenset()
    files: tuple[ProvisionFile, ...] = ()
    image: str = "general"
    skills_dir: str = "~/.bot-bottle/skills"  # where this agent looks for skills
    # Hosts the CLI calls in the background that no setting turns off: denied as ever,
    # marked `expected` in the audit log (left out of `logs --denied` and `suggest`).
    expected_denials: tuple[str, ...] = ()


class Provider(Protocol):
    name: str
    # Extra arguments that make the agent pick up its last conversation in this HOME
    # (`run`/`resume --continue`); empty when the agent has no such thing.
    continue_args: tuple[str, ...]
    # How the operator gets the credential a provider-owned route injects (for errors).
    credential_hint: str

    def contribute(self, spec: AgentProviderSpec, prompt: str) -> Contribution:
        """Routes, env, files and image for this provider; reads nothing from the host."""

    def argv(self, spec: AgentProviderSpec, prompt: str, extra: Sequence[str]) -> tuple[str, ...]:
        """The agent command line, with the prompt wired the provider's way."""

    def mcp(self, servers: Sequence[McpServer]) -> McpWiring:
        """Register `servers` with the agent the way its CLI reads them (none: nothing)."""

    def launch_secrets(
        self, options: ProviderOptions, host_env: Mapping[str, str]
    ) -> dict[str, str]:
        """Credentials the provider reads from host auth files at launch: ref -> value.
        Merged over the host env so provider refs resolve like any token_ref."""

    def launch_files(
        self, options: ProviderOptions, host_env: Mapping[str, str]
    ) -> tuple[ProvisionFile, ...]:
        """Files derived from host state at launch (placeholders only, never a secret)."""


class NoHostState:
    """For providers that read nothing from the host at launch."""

    def launch_secrets(
        self, options: ProviderOptions, host_env: Mapping[str, str]
    ) -> dict[str, str]:
        return {}

    def launch_files(
        self, options: ProviderOptions, host_env: Mapping[str, str]
    ) -> tuple[ProvisionFile, ...]:
        return ()
