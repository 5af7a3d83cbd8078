"""What a backend is given: one bottle's `BottleSpec` (generic values, no provider
knowledge), the sidecars and tools it wires in, and what it reports back
(`Availability`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from bot_bottle.errors import BotBottleError
from bot_bottle.plan.environment import bottle_env


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run here, a one-line `detail` (what isolation it gives, or
    why not), and the `missing` pieces a user would install or enable."""

    ok: bool
    detail: str
    missing: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, so the launcher asks this instead of its id.

    `images`: runs the bottle from a container image (a bottle's `dockerfile` wants it).
    `host_agents`: runs the agent CLIs from bot-bottle's own prefix on the host, which
    must hold them before launch (an image brings its own)."""

    images: bool
    host_agents: bool


@dataclass(frozen=True)
class Readiness:
    """What a backend finds missing for one bottle before it starts: `blockers` stop a
    launch (each with its fix), `notes` do not (an image it will build first)."""

    blockers: tuple[BotBottleError, ...] = ()
    notes: tuple[str, ...] = ()


@runtime_checkable
class ChecksBottle(Protocol):
    """A backend that can tell, without starting anything, what a launch of `spec`
    would stop on (`launch` and `plan` both ask it, through `preflight`)."""

    def readiness(self, spec: BottleSpec) -> Readiness: ...


@dataclass(frozen=True)
class SidecarLink:
    """A sidecar the agent reaches: the host listens on Unix socket `socket`; inside the
    bottle it appears at `127.0.0.1:port` (the backend provides the forwarding)."""

    name: str  # "egress", "git-gate", ...
    socket: Path
    port: int


@dataclass(frozen=True)
class ToolMount:
    """A host directory the bottle sees read-only at `target`; `path_dir` (inside
    `target`) is prepended to PATH when set (e.g. the npm-installed agent CLIs)."""

    source: Path
    target: str
    path_dir: str = ""


@dataclass(frozen=True)
class BottleSpec:
    """Everything a backend needs to run one bottle; generic, no provider knowledge.

    `state_dir` is the bottle's private state directory (the backend keeps its HOME,
    workspace copy and runtime files there). `env` is the agent's environment without
    proxy/CA variables: the backend adds those with `agent_env`, since only it knows
    where the forwarded proxy and the trust bundle appear inside.
    """

    slug: str
    state_dir: Path
    workspace_mode: str  # mount | copy | none
    workspace_path: str  # host path; "" for none
    env: Mapping[str, str] = field(default_factory=dict)
    sidecars: tuple[SidecarLink, ...] = ()
    tools: tuple[ToolMount, ...] = ()
    image: str = ""
    dockerfile: str = ""
    cpus: float | None = None
    memory: str | None = None
    read_only: tuple[str, ...] = ()  # host paths inside a mounted workspace: see workspace_binds

    def sidecar(self, name: str) -> SidecarLink | None:
        return next((s for s in self.sidecars if s.name == name), None)


@dataclass(frozen=True)
class WorkspaceBind:
    """A bind over the mounted workspace: `source` (a host path) at `rel` inside it."""

    source: str
    rel: str
    read_only: bool


def workspace_binds(spec: BottleSpec) -> tuple[WorkspaceBind, ...]:
    """What keeps the files a launch read (`spec.read_only`: manifest, prompt file,
    CA, ...) out of the agent's reach in a mounted workspace, parents before children.

    Each is bound read-only over itself, so writing, chmod and hard links fail, and
    unlink or rename fail too: a mount point cannot be moved (EBUSY). Every directory
    between it and the workspace root is bound over itself, writable: renaming that
    directory away (and putting the agent's own in its place) fails the same way."""
    if spec.workspace_mode != "mount" or not spec.workspace_path:
        return ()
    root = os.path.realpath(spec.workspace_path)
    protected: dict[str, bool] = {}
    for path in spec.read_only:
        rel = os.path.relpath(path, root)
        if rel == "." or rel.startswith(".."):
            continue
        parts = rel.split(os.sep)
        for i in range(1, len(parts)):
            protected.setdefault(os.path.join(*parts[:i]), False)
        protected[rel] = True
    ordered = sorted(protected, key=lambda r: (r.count(os.sep), r))
    return tuple(WorkspaceBind(os.path.join(root, r), r, protected[r]) for r in ordered)


def agent_env(
    spec: BottleSpec,
    home: str,
    base: Mapping[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The agent's environment for this backend: its defaults (`base`) < the spec's env
    and `extra` < bot-bottle's proxy, CA and HOME wiring (`plan.environment`)."""
    egress = spec.sidecar("egress")
    return bottle_env(
        {**spec.env, **(extra or {})},
        home=home,
        proxy_port=egress.port if egress else None,
        base=base,
    )
