"""Everything that would stop a launch, found before anything starts, all at once.

`run` calls `preflight` and refuses on its blockers; `plan`, `check` and `doctor` call
the same function and report them. One function, so a prediction cannot drift from
what a launch does: missing credentials (route tokens, git tokens, `from_host` env,
a provider's host login), the backend that `auto` resolves to and whether it can run
here, the agent CLI a host-agent backend needs, and what the backend itself finds
missing for this bottle (images, a workspace it would refuse).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot_bottle.backends import registry
from bot_bottle.backends.registry import Backend
from bot_bottle.backends.spec import Availability, BottleSpec, ChecksBottle
from bot_bottle.errors import BackendUnavailable, BotBottleError, UnsafeWorkspace
from bot_bottle.executor import Executor
from bot_bottle.names import BACKENDS
from bot_bottle.plan.model import BottlePlan
from bot_bottle.plan.review import protected_paths

if TYPE_CHECKING:
    from bot_bottle.plan.materialize import LaunchInputs


class Blocked(BotBottleError):
    """More than one thing stops a launch: each is named with its fix."""

    def __init__(self, agent: str, blockers: tuple[BotBottleError, ...]) -> None:
        self.blockers = blockers
        lines = [f"  - {b.message}" + (f"\n    fix: {b.fix}" if b.fix else "") for b in blockers]
        super().__init__(f"agent {agent} cannot start, {len(blockers)} problems:\n"
                         + "\n".join(lines))  # fmt: skip


@dataclass(frozen=True)
class Preflight:
    """What a launch of one plan would meet: the backend it resolves to (`backend` is
    None only for an unknown id), what stops it (`blockers`), what it only notes
    (`notes`, e.g. an image it will build first), and, when no credential is missing,
    the launch inputs (credential values: never printed)."""

    backend_id: str
    backend: Backend | None
    blockers: tuple[BotBottleError, ...]
    notes: tuple[str, ...]
    inputs: LaunchInputs | None

    @property
    def ok(self) -> bool:
        return not self.blockers

    def raise_blockers(self, agent: str) -> None:
        """Raise the one blocker as it is, or all of them as one `Blocked`."""
        if len(self.blockers) == 1:
            raise self.blockers[0]
        if self.blockers:
            raise Blocked(agent, self.blockers)


def backend_id_for(plan: BottlePlan, requested: str, executor: Executor | None = None) -> str:
    """The backend a launch uses: `requested` (the `--backend` flag), else the
    manifest's choice; `auto` is a backend that runs images when the bottle has a
    `dockerfile` and that backend can run here, else the first built-in."""
    choice = requested if requested != "auto" else plan.backend
    if choice != "auto":
        return choice
    for candidate in BACKENDS if plan.dockerfile else ():
        try:
            found = registry.get(candidate, executor)
            if found.capabilities.images and found.probe().ok:
                return candidate
        except BackendUnavailable:
            continue
    return BACKENDS[0]


def unavailable(backend_id: str, av: Availability) -> BackendUnavailable:
    need = f" (missing: {'; '.join(av.missing)})" if av.missing else ""
    return BackendUnavailable(
        f"backend {backend_id} cannot run here: {av.detail}{need}",
        "run `bot-bottle doctor` to see what this host is missing",
    )


def preflight(
    plan: BottlePlan,
    requested: str,
    host_env: Mapping[str, str],
    agents_prefix: Path,
    executor: Executor | None = None,
    *,
    resuming: bool = False,
) -> Preflight:
    """Every blocker a launch of `plan` on `requested` would stop on. Starts no bottle
    and no sidecar (the Docker probe may test gVisor once and cache its verdict, as
    `doctor` does); credential values are read into `inputs` only, never shown."""
    from bot_bottle.plan.materialize import try_materialize

    blockers: list[BotBottleError] = []
    notes: list[str] = []
    inputs, missing = try_materialize(plan, host_env)
    blockers += missing
    blockers += hard_linked(plan)
    backend_id = backend_id_for(plan, requested, executor)
    try:
        backend: Backend | None = registry.get(backend_id, executor)
    except BackendUnavailable as e:
        return Preflight(backend_id, None, (*blockers, e), (), inputs)
    assert backend is not None
    av = backend.probe()
    if not av.ok:
        blockers.append(unavailable(backend_id, av))
    if backend.capabilities.host_agents:  # not from an image: they must be installed
        from bot_bottle.agents import require_installed

        try:
            require_installed(plan.argv[0], agents_prefix)
        except BotBottleError as e:
            blockers.append(e)
    # A resumed bottle already has its container or sandbox: only a fresh one is checked.
    if not resuming and isinstance(backend, ChecksBottle):
        found = backend.readiness(_spec_of(plan))
        blockers += found.blockers
        notes += found.notes
    return Preflight(backend_id, backend, tuple(blockers), tuple(notes), inputs)


def hard_linked(plan: BottlePlan) -> list[BotBottleError]:
    """A file the launch read that has other hard links is the same file under names
    no read-only bind covers: the agent wrote the manifest through one that an earlier
    session made (before the file was protected) or that lay in the workspace. Checked
    on a resume too: the last session may have made it."""
    found: list[BotBottleError] = []
    for path in protected_paths(plan):
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            found.append(UnsafeWorkspace(
                f"{path} has {st.st_nlink - 1} other hard link(s): the agent could change "
                "it through them, however read-only the bottle shows it",
                f"remove the other links (`find {plan.workspace.path} -samefile {path}`), "
                f"or replace it with a copy (`cp {path} {path}.new && mv {path}.new {path}`)"))  # fmt: skip
    return found


def _spec_of(plan: BottlePlan) -> BottleSpec:
    """The parts of a bottle's spec known before it has a slug or state, which is all a
    backend's readiness check reads (workspace, image, dockerfile, resources)."""
    return BottleSpec(
        slug="", state_dir=Path(), workspace_mode=plan.workspace.mode,
        workspace_path=plan.workspace.path, image=plan.image, dockerfile=plan.dockerfile,
        cpus=plan.resources.cpus, memory=plan.resources.memory,
    )  # fmt: skip
