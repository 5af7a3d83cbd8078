"""The backend protocol and the one registry of backends, keyed by a stable id.

Built-ins register the same way an outside plugin would (`register("docker", factory)`);
the CLI's choices, the manifest's `backend` field and `auto` all read `names.BACKENDS`
or the registry, so a backend name is written once.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Protocol

from bot_bottle.backends.spec import Availability, BottleSpec, Capabilities
from bot_bottle.executor import Executor, ProcessExecutor
from bot_bottle.names import BACKENDS
from bot_bottle.provision.target import Target

BUILTIN = BACKENDS


# ---------------------------------------------------------------- the protocol


class Backend(Protocol):
    """A sandbox runtime. Lifecycle on one bottle's state dir:

    `prepare` (state, HOME, workspace copy; returns the `Target` provisioning writes
    through) -> `launch` (start long-lived parts, if any) -> `attach` (run the agent
    on this terminal, return its exit code; meanwhile `exec_in` runs more commands
    beside it) -> `stop` -> `preserve` (keep for resume) or `remove`. `resume`
    re-opens a preserved bottle and returns its Target.
    """

    id: str
    capabilities: Capabilities

    def probe(self) -> Availability: ...

    def prepare(self, spec: BottleSpec) -> Target: ...

    def launch(self, spec: BottleSpec) -> None: ...

    def attach(self, spec: BottleSpec, argv: Sequence[str], *, tty: bool = True) -> int: ...

    def exec_in(self, spec: BottleSpec, argv: Sequence[str], *, tty: bool) -> int:
        """Run `argv` beside the attached agent, with exactly its isolation."""
        ...

    def stop(self, spec: BottleSpec) -> None: ...

    def preserve(self, spec: BottleSpec) -> None: ...

    def resume(self, spec: BottleSpec) -> Target: ...

    def remove(self, spec: BottleSpec) -> None: ...

    def is_running(self, spec: BottleSpec) -> bool: ...


BackendFactory = Callable[[Executor], Backend]

REGISTRY: dict[str, BackendFactory] = {}


def register(backend_id: str, factory: BackendFactory) -> None:
    """Add a backend under a stable id (built-ins and plugins alike)."""
    REGISTRY[backend_id] = factory


def _load_builtins() -> None:
    # Imported lazily so `bot-bottle --help` stays fast and a broken optional backend
    # cannot break the others.
    import importlib

    for module in (f"bot_bottle.backends.{b}" for b in BUILTIN):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:
                print(f"bot-bottle: backend module {module} failed to import: {e}", file=sys.stderr)
        except ImportError as e:  # pragma: no cover
            print(f"bot-bottle: backend module {module} failed to import: {e}", file=sys.stderr)


def get(backend_id: str, executor: Executor | None = None) -> Backend:
    """The backend registered as `backend_id`, built with `executor`."""
    from bot_bottle.errors import BackendUnavailable

    _load_builtins()
    if backend_id not in REGISTRY:
        raise BackendUnavailable(
            f"unknown backend {backend_id!r} (known: {', '.join(sorted(REGISTRY))})",
            "`bot-bottle doctor` lists the backends this host can run",
        )
    return REGISTRY[backend_id](executor or ProcessExecutor())


def probe_all() -> list[tuple[str, Availability]]:
    """Every registered backend's availability, for `bot-bottle doctor`."""
    _load_builtins()
    out = []
    for backend_id in sorted(REGISTRY):
        try:
            out.append((backend_id, REGISTRY[backend_id](ProcessExecutor()).probe()))
        except Exception as e:  # a probe must never crash doctor
            out.append((backend_id, Availability(False, f"probe failed: {e}", [])))
    return out
