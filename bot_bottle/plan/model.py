"""The resolved bottle: what a launch will do, as plain values. No process starts here.

A `BottlePlan` holds names, never credential values: token slots name the host env
var (or provider-held credential) they will be filled from at launch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from bot_bottle.policy.egress_policy import EgressPolicy
from bot_bottle.providers.base import ProviderOptions, ProvisionFile

__all__ = [
    "BottlePlan", "EnvVar", "GitIdentity", "GitRemotePlan", "ProvisionFile", "Resources",
    "Sourced", "TokenSlot", "Workspace", "gate_token_slots",
]  # fmt: skip

WorkspaceMode = Literal["mount", "copy", "none"]


@dataclass(frozen=True)
class Sourced:
    """A value with where it came from (`manifest`, `agent`, `bottle`, a provider, `default`)."""

    value: str
    source: str


@dataclass(frozen=True)
class TokenSlot:
    """Sidecar env slot `slot` is filled at launch from `ref` (a host env var name, or a
    credential a provider reads from its host auth file); `source` is provenance."""

    slot: str
    ref: str
    source: str = "manifest"


@dataclass(frozen=True)
class EnvVar:
    """One agent environment variable: a literal `value` or the host variable `from_host`."""

    name: str
    value: str | None = None
    from_host: str | None = None
    source: str = "manifest"


@dataclass(frozen=True)
class GitIdentity:
    name: Sourced | None = None
    email: Sourced | None = None


@dataclass(frozen=True)
class GitRemotePlan:
    name: str
    url: str
    protected_refs: tuple[str, ...] = ()
    allowed_refs: tuple[str, ...] = ()
    token_ref: str = ""  # host env var with an https token, for the git gate only


def gate_token_slots(remotes: tuple[GitRemotePlan, ...]) -> dict[str, str]:
    """Remote name -> the git gate's env slot for its https token (`GIT_GATE_TOKEN_<n>`)."""
    with_token = [r for r in remotes if r.token_ref]
    return {r.name: f"GIT_GATE_TOKEN_{i}" for i, r in enumerate(with_token)}


@dataclass(frozen=True)
class Workspace:
    mode: WorkspaceMode
    path: str  # host path; "" when mode is none


@dataclass(frozen=True)
class Resources:
    cpus: float | None = None
    memory: str | None = None


@dataclass(frozen=True)
class BottlePlan:
    """Everything a backend needs to start one agent in one bottle."""

    agent: str
    bottle: str
    provider: str
    argv: tuple[str, ...]
    env: tuple[EnvVar, ...]
    hidden_env: frozenset[str]
    egress: EgressPolicy
    token_slots: tuple[TokenSlot, ...]
    protect_slots: tuple[TokenSlot, ...]
    files: tuple[ProvisionFile, ...]
    git_identity: GitIdentity
    git_remotes: tuple[GitRemotePlan, ...]
    workspace: Workspace
    backend: str = "auto"
    image: str = ""
    dockerfile: str = ""
    resources: Resources = field(default_factory=Resources)
    skills: tuple[str, ...] = ()  # host skill directories
    skills_dir: str = "~/.bot-bottle/skills"  # where the agent finds them in the bottle
    supervise: bool = False
    manifest_digest: str = ""
    provider_options: ProviderOptions = field(default_factory=ProviderOptions)
    sources: tuple[str, ...] = ()  # host files and dirs the plan was derived from
    manifest_path: str = ""  # the manifest's resolved absolute path
    prompt_file: str = ""  # resolved host path of agents.<a>.prompt_file, if any
    prompt_digest: str = ""  # sha256 of the prompt text the plan carries

    def visible_env_names(self) -> list[str]:
        return [e.name for e in self.env if e.name not in self.hidden_env]
