"""The launcher: plan -> sidecars -> provisioned bottle -> attached agent -> cleanup.

Order is what makes failure safe: everything that can fail on user input (manifest,
credentials, backend availability) is checked before any process starts; sidecars
are ready before the agent exists; the agent's only network is the sidecar sockets.

Longer than 300 lines: the launch order and its cleanup are one story, kept in one
place so that every started resource has its stop beside it.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from bot_bottle.backends import registry
from bot_bottle.backends.registry import Backend
from bot_bottle.backends.spec import BottleSpec, SidecarLink, ToolMount
from bot_bottle.errors import BackendUnavailable, DamagedState, StateError
from bot_bottle.executor import Executor, ProcessExecutor
from bot_bottle.plan.model import BottlePlan
from bot_bottle.plan.review import protected_paths
from bot_bottle.preflight import backend_id_for, preflight, unavailable
from bot_bottle.sidecars import lifeline
from bot_bottle.sidecars.egress.request import EgressRequest, ca_cert
from bot_bottle.sidecars.egress.starter import start_egress
from bot_bottle.sidecars.process import SidecarHandle, Stopping, alive, begin_stop
from bot_bottle.state.ending import STOP_REQUEST, Ending, StopRequest, record_ending, stopped_early
from bot_bottle.state.process_identity import running, signal_recorded
from bot_bottle.state.store import BottleMetadata, StateStore
from bot_bottle.state.workspace_lock import workspace_lock

if TYPE_CHECKING:
    from bot_bottle.plan.materialize import LaunchInputs
    from bot_bottle.state.user_config import NotifyHook

EGRESS_PORT = 3128
GIT_GATE_PORT = 9419
AGENTS_TARGET = "/opt/bot-bottle/agents"


@dataclass(frozen=True)
class RunOptions:
    backend: str = "auto"
    keep: bool = False
    tty: bool = True
    share_workspace: bool = False  # run beside another bottle on the same mount workspace
    notify: NotifyHook | None = None  # the user's hook for supervise requests (user_config)


@dataclass
class Bottle:
    """A launched bottle's moving parts, for cleanup."""

    meta: BottleMetadata
    spec: BottleSpec
    backend: Backend
    sidecars: list[SidecarHandle] = field(default_factory=list)
    stopping: list[Stopping] = field(default_factory=list)  # told to stop, not yet gone


def agents_dir(store: StateStore) -> Path:
    """bot-bottle's own npm prefix for agent CLIs (`bot-bottle agents install`):
    `$BOT_BOTTLE_AGENTS`, else `<state root>/agents`."""
    override = os.environ.get("BOT_BOTTLE_AGENTS")
    return Path(override) if override else store.root / "agents"


def run_dir(store: StateStore) -> Path:
    """Where per-user processes (the egress helper) keep their sockets and logs."""
    return store.root / "run"


def choose_backend(plan: BottlePlan, requested: str, executor: Executor | None = None) -> Backend:
    """The backend `preflight.backend_id_for` resolves, if it can run here. An explicit
    choice that cannot run is an error, never a fallback."""
    backend_id = backend_id_for(plan, requested, executor)
    backend = registry.get(backend_id, executor)
    av = backend.probe()
    if not av.ok:
        raise unavailable(backend_id, av)
    return backend


def sidecar_dir(state_dir: Path, name: str) -> Path:
    """A sidecar's private files (routes, CA key, audit log): never bound into a bottle."""
    return state_dir / "sidecars" / name


def bottle_spec(
    plan: BottlePlan,
    meta: BottleMetadata,
    state_dir: Path,
    agent_env: Mapping[str, str],
    store: StateStore,
    git_gate: bool,
) -> BottleSpec:
    sockets = state_dir / "sockets"
    links = [SidecarLink("egress", sockets / "egress.sock", EGRESS_PORT)]
    if git_gate:
        links.append(SidecarLink("git-gate", sockets / "git-gate.sock", GIT_GATE_PORT))
    tools = []
    if agents_dir(store).is_dir():
        tools.append(ToolMount(agents_dir(store), AGENTS_TARGET, "bin"))
    return BottleSpec(
        slug=meta.slug, state_dir=state_dir, workspace_mode=plan.workspace.mode,
        workspace_path=plan.workspace.path, env=dict(agent_env), sidecars=tuple(links),
        tools=tuple(tools), image=plan.image, dockerfile=plan.dockerfile,
        cpus=plan.resources.cpus, memory=plan.resources.memory,
        read_only=protected_paths(plan),
    )  # fmt: skip


def start_git_gate(
    plan: BottlePlan, inputs: LaunchInputs, gdir: Path, socket: Path, audit: Path,
    launcher: str = "",
) -> SidecarHandle:  # fmt: skip
    """The git gate sidecar: listens on the bottle's socket and holds the remotes'
    credentials itself (imported lazily: bottles without remotes never pay for it). It
    scans pushes for the same canaries and protected values as egress."""
    from bot_bottle.sidecars.git_gate.starter import start_git_gate as start

    dlp = inputs.policy.dlp
    protected = {k: v for k, v in inputs.sidecar_env.items() if k in dlp.protect_slots}
    return start(
        plan, gdir, socket, audit, dlp.canaries, protected, inputs.gate_env, launcher=launcher
    )


def start_sidecars(
    bottle: Bottle,
    plan: BottlePlan,
    inputs: LaunchInputs,
    store: StateStore,
    executor: Executor,
) -> None:
    sd = bottle.spec.state_dir
    eg = sidecar_dir(sd, "egress")
    eg.mkdir(parents=True, exist_ok=True, mode=0o700)
    (sd / "sockets").mkdir(parents=True, exist_ok=True, mode=0o700)
    routes = eg / "routes.json"
    routes.write_text(inputs.policy.to_json())
    egress = bottle.spec.sidecar("egress")
    assert egress is not None
    egress.socket.unlink(missing_ok=True)
    # Each sidecar ends with the bottle's launcher, even one killed outright: this
    # process, or the one a `resume` that restarts them finds running the bottle.
    launcher = lifeline.token(bottle.meta.pids["launcher"], bottle.meta.started.get("launcher"))
    req = EgressRequest(
        routes=routes,
        socket=egress.socket,
        audit_log=StateStore.audit_log(sd),
        confdir=eg / "conf",
        log=eg / "egress.log",
        env=inputs.sidecar_env,
        launcher=launcher,
    )
    bottle.sidecars.append(start_egress(req, executor, run_dir(store)))
    gate = bottle.spec.sidecar("git-gate")
    if gate is not None:
        gdir = sidecar_dir(sd, "git-gate")
        gdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        bottle.sidecars.append(
            start_git_gate(plan, inputs, gdir, gate.socket, StateStore.audit_log(sd), launcher)
        )


def stop_sidecars(bottle: Bottle) -> None:
    """Tell every sidecar to stop; `run_bottle` waits (its last cleanup but the lock
    and the report) until each is gone, warm ones too (they are not our children): no
    process outlives its launcher, and its audit log is complete. The backend's and the
    state's cleanup run while the sidecars finish."""
    bottle.stopping.append(begin_stop(s.pid for s in bottle.sidecars))


def _wait_stopped(stopping: list[Stopping]) -> None:
    for each in stopping:
        each.wait()


class Sidecars(Protocol):
    """How a launch starts and stops a bottle's sidecars (host processes in production;
    a fake in the launcher's unit tests). `start` appends each handle to
    `bottle.sidecars` as soon as it runs, so `stop` stops what a failed start began."""

    def start(
        self, bottle: Bottle, plan: BottlePlan, inputs: LaunchInputs, store: StateStore,
        executor: Executor,
    ) -> None: ...  # fmt: skip

    def stop(self, bottle: Bottle) -> None: ...

    def egress_ca(self, bottle: Bottle) -> bytes: ...


class HostSidecars:
    """The sidecars as host processes in their own sessions."""

    def start(
        self, bottle: Bottle, plan: BottlePlan, inputs: LaunchInputs, store: StateStore,
        executor: Executor,
    ) -> None:  # fmt: skip
        start_sidecars(bottle, plan, inputs, store, executor)

    def stop(self, bottle: Bottle) -> None:
        stop_sidecars(bottle)

    def egress_ca(self, bottle: Bottle) -> bytes:
        return ca_cert(sidecar_dir(bottle.spec.state_dir, "egress") / "conf").read_bytes()


def run_bottle(
    plan: BottlePlan,
    *,
    manifest_path: str,
    options: RunOptions,
    host_env: Mapping[str, str],
    store: StateStore | None = None,
    executor: Executor | None = None,
    confirm: Callable[[BottlePlan, Backend, tuple[str, ...]], bool] = lambda p, b, n: True,
    existing: BottleMetadata | None = None,
    on_started: Callable[[BottleMetadata], None] = lambda m: None,
    sidecars: Sidecars | None = None,
    on_ended: Callable[[Ending], None] = lambda e: None,
) -> int:
    """Launch `plan` (or resume `existing`), attach the agent, clean up. Returns the
    exit code of the `Ending` handed to `on_ended` once cleanup is done (the agent's,
    or 143 for a bottle stopped from another terminal). Raises a `BotBottleError`
    before anything starts on bad input.

    Every resource registers its own cleanup on one `ExitStack` as it is started, so
    a failure (or SIGTERM) at any step stops exactly what had started, and one
    cleanup that fails does not skip the others (they run, then its error is raised).
    """
    from bot_bottle.provision.steps import ProvisionInputs, provision

    store = store or StateStore()
    executor = executor or ProcessExecutor()
    sidecars = sidecars or HostSidecars()
    requested = existing.backend if existing else options.backend
    found = preflight(plan, requested, host_env, agents_dir(store), executor,
                      resuming=existing is not None)  # fmt: skip
    found.raise_blockers(plan.agent)  # every one of them, before anything starts
    assert found.inputs is not None and found.backend is not None
    inputs, backend = found.inputs, found.backend
    # Held until this process ends (released below, or by the kernel on any death).
    lock = workspace_lock(store.root / "locks", plan.workspace.mode, plan.workspace.path,
                          options.share_workspace)  # fmt: skip
    if lock is not None:
        lock.acquire()  # refuses before the prompt: nothing to confirm if it cannot run
    try:
        if not confirm(plan, backend, found.notes):  # notes: shown with the summary
            if lock is not None:
                lock.release()
            return 1
        if existing is None:
            meta = store.create(
                agent=plan.agent,
                bottle=plan.bottle,
                backend=backend.id,
                manifest_path=manifest_path,
                manifest_digest=plan.manifest_digest,
            )
        else:
            meta = existing
        if lock is not None:
            lock.name(meta.slug)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    state_dir = store.dir(meta.slug)
    spec = bottle_spec(plan, meta, state_dir, inputs.agent_env, store, bool(plan.git_remotes))
    keep = options.keep or existing is not None
    result = {"rc": 1}
    endings: list[Ending] = []
    with contextlib.ExitStack() as stack:
        stack.callback(_report, endings, on_ended)  # last: the terminal is the user's again
        if lock is not None:
            stack.callback(lock.release)  # after everything else has stopped
        # Then: the sidecars told to stop (`stop_sidecars`, below) are gone.
        stopping: list[Stopping] = []
        stack.callback(_wait_stopped, stopping)
        old_term = signal.signal(signal.SIGTERM, _raise_exit)
        stack.callback(signal.signal, signal.SIGTERM, old_term)
        stack.callback(_finish, store, meta.slug, keep, result)
        stack.callback(_note_stopped_early, store, meta.slug, endings)
        meta = store.update(
            meta.slug,
            status="starting",
            pids={"launcher": os.getpid()},
            extra={"workspace_mode": spec.workspace_mode, "workspace_path": spec.workspace_path,
                   STOP_REQUEST: None, "keep": keep},
        )  # fmt: skip
        bottle = Bottle(meta, spec, backend, stopping=stopping)
        stack.callback(backend.preserve if keep else backend.remove, spec)
        stack.callback(backend.stop, spec)
        target = backend.resume(spec) if existing else backend.prepare(spec)
        stack.callback(sidecars.stop, bottle)
        stack.callback(_stop_restarted_sidecars, store, meta.slug)  # see repair.py
        sidecars.start(bottle, plan, inputs, store, executor)
        if options.notify is not None and plan.supervise:
            from bot_bottle.state.request_notifier import notifying
            from bot_bottle.state.requests import RequestDir

            asks = RequestDir(sidecar_dir(state_dir, "egress") / "requests", meta.bottle)
            stack.enter_context(
                notifying(options.notify, meta.slug, asks, state_dir / "notify.log")
            )
        target.ready()  # a backend may create the bottle meanwhile; its error is raised here
        meta = store.update(
            meta.slug,
            pids={**meta.pids, **{s.name: s.pid for s in bottle.sidecars}},
            extra={"sidecar_mode": bottle.sidecars[0].mode} if bottle.sidecars else None,
        )
        provision(target, ProvisionInputs(
            egress_ca_pem=sidecars.egress_ca(bottle), files=inputs.files, skills=plan.skills,
            skills_dir=plan.skills_dir, git_identity=plan.git_identity,
            git_remotes=plan.git_remotes,
            git_gate_url=f"http://127.0.0.1:{GIT_GATE_PORT}" if spec.sidecar("git-gate") else "",
        ))  # fmt: skip
        backend.launch(spec)
        on_started(store.update(meta.slug, status="running"))
        agent_code = backend.attach(spec, plan.argv, tty=options.tty)
        endings.append(_ending(store, bottle, agent_code))
        result["rc"] = endings[0].exit_code
    return result["rc"]


def _report(endings: list[Ending], on_ended: Callable[[Ending], None]) -> None:
    for ending in endings:
        on_ended(ending)


def _ending(store: StateStore, bottle: Bottle, agent_code: int) -> Ending:
    """Why the attached session ended, from what is true the moment it returns."""
    dead = tuple(s.name for s in bottle.sidecars if not alive(s.pid))
    return record_ending(store, bottle.meta.slug, agent_code, dead)


def _note_stopped_early(store: StateStore, slug: str, endings: list[Ending]) -> None:
    """A bottle stopped from another terminal before its agent started: its launcher
    unwinds on SIGTERM (`_raise_exit`), and says so too."""
    early = None if endings else stopped_early(store, slug)
    endings.extend([early] if early else [])


def _finish(store: StateStore, slug: str, keep: bool, result: dict[str, int]) -> None:
    """The metadata a launch leaves: a kept bottle is `stopped` with its exit code and
    no pids; any other is retired (its state removed, its audit log kept)."""
    if keep:
        store.update(slug, status="stopped", pids={}, extra={"exit_code": result["rc"]})
    else:
        store.retire(slug)


def _stop_restarted_sidecars(store: StateStore, slug: str) -> None:
    """Sidecars started again while the bottle ran (`repair.restart_sidecars`) are not
    this launcher's children: stop them from the pids the metadata records."""
    with contextlib.suppress(StateError):
        stop_leftover_sidecars(store, store.load(slug))


def _raise_exit(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def status_of(meta: BottleMetadata) -> str:
    """Live status: `degraded` when the launcher runs but a sidecar is dead."""
    if meta.status not in ("running", "starting"):
        return meta.status
    launcher = meta.pids.get("launcher")
    if launcher is None or not running(launcher, meta.started.get("launcher")):
        return "exited"
    dead = [n for n, pid in meta.pids.items()
            if n != "launcher" and not running(pid, meta.started.get(n))]  # fmt: skip
    return "degraded" if dead else meta.status


def stop_bottle(store: StateStore, slug: str, by: str = "stop") -> BottleMetadata:
    """Stop a bottle's launcher (which ends the agent, restores its terminal and says
    that `bot-bottle BY` stopped it) and its sidecars; wait for the launcher's cleanup,
    so that the bottle is stopped (or gone) when this returns. A recorded pid that now
    names another process (after a crash or a reboot) is not signalled: the process it
    recorded is gone."""
    meta = _with_launcher(store, store.load(slug))
    launcher = meta.pids.get("launcher")
    started = meta.started.get("launcher")
    if launcher is not None and running(launcher, started):
        store.update(slug, extra={STOP_REQUEST: StopRequest.now(by).to_json()})
        signal_recorded(launcher, started, signal.SIGTERM)
    for name, pid in meta.pids.items():
        if name != "launcher":
            signal_recorded(pid, meta.started.get(name), signal.SIGTERM, group=True)
    if launcher is not None:
        _wait_gone(launcher, started, LAUNCHER_CLEANUP_S)
    if not store.dir(slug).exists():
        return meta
    try:
        return store.update(slug, status="stopped")
    except StateError:  # retired meanwhile by its launcher
        return meta


LAUNCHER_CLEANUP_S = 20.0
"""How long `stop` waits for a launcher to clean up (a Docker container's stop takes
up to its 3 s grace period, then removal)."""


def _with_launcher(store: StateStore, meta: BottleMetadata) -> BottleMetadata:
    """`meta` once its launcher has recorded its pid: a bottle just allocated (`created`)
    gets it a moment later, and a stop in between would otherwise signal nobody."""
    import time

    end = time.monotonic() + 2
    while meta.status == "created" and "launcher" not in meta.pids and time.monotonic() < end:
        time.sleep(0.02)
        meta = store.load(meta.slug)
    return meta


def _wait_gone(pid: int, started: str | None, timeout: float) -> None:
    import time

    end = time.monotonic() + timeout
    while running(pid, started) and time.monotonic() < end:
        time.sleep(0.05)


def remove_bottle(store: StateStore, slug: str, executor: Executor | None = None) -> None:
    try:
        meta = stop_bottle(store, slug, by="rm")
    except DamagedState:
        # A damaged file names no pid to trust: stop what works in the bottle's state
        # dir (as gc does), then the state goes, its audit log kept. Docker objects
        # without state are gc's to collect.
        from bot_bottle.backends.docker.gc import stop_processes

        stop_processes(store.dir(slug), "its state is damaged", dry_run=False)
        store.retire(slug)
        return
    if store.dir(slug).exists():
        try:
            backend = registry.get(meta.backend, executor)
            backend.remove(_spec_from_meta(store, meta))
        except BackendUnavailable:
            pass
        store.retire(slug)


def _spec_from_meta(store: StateStore, meta: BottleMetadata) -> BottleSpec:
    return BottleSpec(
        slug=meta.slug,
        state_dir=store.dir(meta.slug),
        workspace_mode=str(meta.extra.get("workspace_mode", "none")),
        workspace_path=str(meta.extra.get("workspace_path", "")),
    )


def resumable(store: StateStore, slug: str) -> BottleMetadata:
    meta = store.load(slug)
    if status_of(meta) in ("running", "starting", "degraded"):
        raise StateError(f"bottle {slug} is still running", f"`bot-bottle stop {slug}` first")
    stop_leftover_sidecars(store, meta)
    return meta


def stop_leftover_sidecars(store: StateStore, meta: BottleMetadata) -> None:
    """A launcher killed outright (SIGKILL, the OOM killer) ran no cleanup, and its
    sidecars lead their own sessions, credentials in their environment: stop them before
    new ones take over the sockets, or they would run on, unrecorded, for good. Only a
    process still working in this bottle's sockets dir is signalled (every sidecar runs
    there and is still the process recorded), never whoever has since been given a
    recorded pid."""
    sockets = os.path.realpath(store.dir(meta.slug) / "sockets")
    for name, pid in meta.pids.items():
        if name == "launcher":
            continue
        try:
            if os.readlink(f"/proc/{pid}/cwd") != sockets:
                continue
        except OSError:
            continue
        signal_recorded(pid, meta.started.get(name), signal.SIGTERM, group=True)
