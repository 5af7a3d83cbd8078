"""`run_bottle` with a fake backend and fake sidecars (no process starts): on success,
on a failure at each step, and on SIGTERM mid-launch, everything that started is
stopped, in reverse order, and the metadata ends right (retired, or kept as
`stopped` with the exit code and no pids)."""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot_bottle.backends import registry
from bot_bottle.backends.spec import Availability, BottleSpec, Capabilities
from bot_bottle.errors import BotBottleError, StateError
from bot_bottle.executor import CommandResult, Executor
from bot_bottle.launch import Bottle, RunOptions, run_bottle
from bot_bottle.manifest.loader import LoadedManifest, parse_manifest
from bot_bottle.plan.model import BottlePlan
from bot_bottle.plan.resolver import resolve
from bot_bottle.sidecars.process import SidecarHandle
from bot_bottle.state.store import BottleMetadata, StateStore

CA = b"-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n"


class Boom(RuntimeError):
    pass


@dataclass
class World:
    """What happened, in order; `fail` names the step that raises, `term` the step
    during which the launcher receives SIGTERM."""

    events: list[str] = field(default_factory=list)
    fail: str = ""
    term: str = ""
    files: dict[str, bytes] = field(default_factory=dict)  # what the bottle was given
    seen: list[BottleMetadata] = field(default_factory=list)  # the metadata mid-launch

    def step(self, name: str) -> None:
        self.events.append(name)
        if name == self.term:
            os.kill(os.getpid(), signal.SIGTERM)
        if name == self.fail:
            raise Boom(name)


@dataclass
class FakeTarget:
    world: World
    home: str = "/home/agent"
    workspace: str = "/workspace"

    def ready(self) -> None:
        self.world.step("ready")

    def put_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self.world.files[path] = data

    def read_file(self, path: str, limit: int) -> bytes | None:
        return None

    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> CommandResult:
        return CommandResult(0, "", "")


NO_CAPABILITIES = Capabilities(images=False, host_agents=False)


@dataclass
class FakeBackend:
    world: World
    id: str = "fake"
    capabilities: Capabilities = NO_CAPABILITIES

    def probe(self) -> Availability:
        return Availability(True, "fake")

    def prepare(self, spec: BottleSpec) -> FakeTarget:
        self.world.step("prepare")
        return FakeTarget(self.world)

    def resume(self, spec: BottleSpec) -> FakeTarget:
        self.world.step("resume")
        return FakeTarget(self.world)

    def launch(self, spec: BottleSpec) -> None:
        self.world.step("launch")

    def attach(self, spec: BottleSpec, argv: Sequence[str], *, tty: bool = True) -> int:
        self.world.step("attach")
        return 7

    def stop(self, spec: BottleSpec) -> None:
        self.world.step("backend.stop")

    def preserve(self, spec: BottleSpec) -> None:
        self.world.step("backend.preserve")

    def remove(self, spec: BottleSpec) -> None:
        self.world.step("backend.remove")

    def is_running(self, spec: BottleSpec) -> bool:
        return False


@dataclass
class FakeSidecars:
    """Starts egress, then the git gate; each handle is recorded before the next."""

    world: World

    def start(self, bottle: Bottle, plan: BottlePlan, inputs: object, store: StateStore,
              executor: Executor) -> None:  # fmt: skip
        self.world.seen.append(store.load(bottle.meta.slug))
        for name in ("egress", "git-gate"):
            self.world.step(f"start {name}")
            bottle.sidecars.append(
                SidecarHandle(name, 2**22 + len(bottle.sidecars), Path(), "cold")
            )

    def stop(self, bottle: Bottle) -> None:
        self.world.events.append("stop " + ",".join(s.name for s in bottle.sidecars))
        if self.world.fail == "sidecars.stop":
            raise Boom("sidecars.stop")

    def egress_ca(self, bottle: Bottle) -> bytes:
        self.world.step("egress_ca")
        return CA


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    w = World()
    registry.get("namespace")  # load the built-ins first, so ours is not overwritten
    monkeypatch.setitem(registry.REGISTRY, "fake", lambda ex: FakeBackend(w))
    return w


@pytest.fixture
def plan(tmp_path: Path) -> BottlePlan:
    text = "bottles: {dev: {workspace: none}}\nagents: {c: {bottle: dev}}\n"
    path = tmp_path / "bot-bottle.yaml"
    path.write_text(text)
    return resolve(LoadedManifest(parse_manifest(text), path, "sha256:test"), "c", {})


def launch(
    plan: BottlePlan, world: World, store: StateStore, *, keep: bool = False,
    existing: BottleMetadata | None = None, confirm: bool = True,
    host_env: Mapping[str, str] | None = None,
) -> tuple[int | None, BaseException | None, list[BottleMetadata]]:  # fmt: skip
    started: list[BottleMetadata] = []
    try:
        rc = run_bottle(
            plan, manifest_path="m.yaml", options=RunOptions(backend="fake", keep=keep),
            host_env=host_env or {}, store=store, existing=existing,
            on_started=started.append, sidecars=FakeSidecars(world),
            confirm=lambda p, b, n: confirm,
        )  # fmt: skip
        return rc, None, started
    except (Boom, SystemExit) as e:
        return None, e, started


STEPS = ["prepare", "start egress", "start git-gate", "ready", "egress_ca", "launch", "attach"]


def cleanup_for(done: list[str]) -> list[str]:
    """The sidecars' stop, when the backend's prepare had returned (a sidecar that began
    starting counts: it may be running), before the backend's own cleanup."""
    sidecars = [s.split()[1] for s in done[:-1] if s.startswith("start ")]
    return ["stop " + ",".join(sidecars)] if done != ["prepare"] else []


def test_success_retires_a_bottle_not_kept(plan: BottlePlan, world: World, tmp_path: Path) -> None:
    store = StateStore(tmp_path / "home")
    rc, err, started = launch(plan, world, store)
    assert (rc, err) == (7, None)
    assert world.events == [*STEPS, "stop egress,git-gate", "backend.stop", "backend.remove"]
    assert started[0].status == "running" and set(started[0].pids) == {
        "launcher",
        "egress",
        "git-gate",
    }
    assert store.all() == []
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_success_kept_is_stopped_with_its_exit_code(
    plan: BottlePlan, world: World, tmp_path: Path
) -> None:
    store = StateStore(tmp_path / "home")
    rc, _, started = launch(plan, world, store, keep=True)
    assert rc == 7
    assert world.events[-2:] == ["backend.stop", "backend.preserve"]
    meta = store.load(started[0].slug)
    assert (meta.status, meta.pids, meta.extra["exit_code"]) == ("stopped", {}, 7)
    assert meta.extra["workspace_mode"] == "none" and meta.extra["sidecar_mode"] == "cold"


@pytest.mark.parametrize("keep", [False, True], ids=["removed", "kept"])
@pytest.mark.parametrize("how", ["fail", "term"])
@pytest.mark.parametrize("step", STEPS)
def test_a_failure_at_any_step_stops_what_started(
    plan: BottlePlan, world: World, tmp_path: Path, step: str, how: str, keep: bool
) -> None:
    setattr(world, how, step)
    store = StateStore(tmp_path / "home")
    rc, err, _ = launch(plan, world, store, keep=keep)
    assert rc is None
    if how == "term":
        assert isinstance(err, SystemExit) and err.code == 128 + signal.SIGTERM
    else:
        assert isinstance(err, Boom)
    done = world.events[: world.events.index(step) + 1]
    final = "backend.preserve" if keep else "backend.remove"
    assert world.events == [*done, *cleanup_for(done), "backend.stop", final]
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    if keep:
        (meta,) = store.all()
        assert (meta.status, meta.pids, meta.extra["exit_code"]) == ("stopped", {}, 1)
    else:
        assert store.all() == []


def test_a_failing_cleanup_does_not_skip_the_rest(
    plan: BottlePlan, world: World, tmp_path: Path
) -> None:
    """main tore down in one unguarded `finally`: an error stopping one part skipped
    removal and retirement."""
    world.fail = "sidecars.stop"
    store = StateStore(tmp_path / "home")
    rc, err, _ = launch(plan, world, store)
    assert isinstance(err, Boom) and rc is None
    assert world.events[-2:] == ["backend.stop", "backend.remove"]
    assert store.all() == []


def test_resume_keeps_the_bottle(plan: BottlePlan, world: World, tmp_path: Path) -> None:
    store = StateStore(tmp_path / "home")
    _, _, started = launch(plan, world, store, keep=True)
    world.events.clear()
    rc, _, _ = launch(plan, world, store, existing=store.load(started[0].slug))
    assert rc == 7 and world.events[0] == "resume" and world.events[-1] == "backend.preserve"
    assert store.load(started[0].slug).status == "stopped"
    assert [m.slug for m in store.all()] == [started[0].slug]  # the same bottle, no new one
    with pytest.raises(StateError):
        store.load("nope")


def test_the_bottle_is_starting_while_it_starts(
    plan: BottlePlan, world: World, tmp_path: Path
) -> None:
    """`ls` during a launch: `starting`, with the launcher's pid (so a launcher killed
    mid-launch is seen dead), and where its workspace is (so `rm` can find it)."""
    store = StateStore(tmp_path / "home")
    launch(plan, world, store)
    (meta,) = world.seen
    assert (meta.status, meta.pids) == ("starting", {"launcher": os.getpid()})
    assert meta.extra["workspace_mode"] == "none"


def test_declining_starts_nothing(plan: BottlePlan, world: World, tmp_path: Path) -> None:
    store = StateStore(tmp_path / "home")
    rc, err, started = launch(plan, world, store, confirm=False)
    assert (rc, err, started, world.events, store.all()) == (1, None, [], [], [])


def test_the_bottle_gets_the_egress_ca(plan: BottlePlan, world: World, tmp_path: Path) -> None:
    launch(plan, world, StateStore(tmp_path / "home"))
    assert any(CA in data for data in world.files.values()), sorted(world.files)


def test_an_agent_cli_not_installed_is_refused_before_anything_starts(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backend that runs the agent CLIs from the host needs them installed first."""
    monkeypatch.setitem(
        registry.REGISTRY,
        "fake",
        lambda ex: FakeBackend(world, capabilities=Capabilities(images=False, host_agents=True)),
    )
    monkeypatch.setenv("BOT_BOTTLE_AGENTS", str(tmp_path / "no-agents"))
    text = (
        "bottles: {dev: {workspace: none, agent_provider: {template: claude, auth_token: TOK}}}\n"
        "agents: {c: {bottle: dev}}\n"
    )
    path = tmp_path / "bot-bottle.yaml"
    path.write_text(text)
    claude = resolve(LoadedManifest(parse_manifest(text), path, "sha256:test"), "c", {})
    store = StateStore(tmp_path / "home")
    with pytest.raises(BotBottleError, match="not installed"):
        launch(claude, world, store, host_env={"TOK": "t"})
    assert (world.events, store.all()) == ([], [])


def test_a_held_workspace_refuses_run_and_resume_before_anything_starts(
    world: World, tmp_path: Path
) -> None:
    from bot_bottle.state.workspace_lock import WorkspaceBusy, workspace_lock

    (tmp_path / "ws").mkdir()
    text = "bottles: {dev: {workspace: {mode: mount, path: ws}}}\nagents: {c: {bottle: dev}}\n"
    path = tmp_path / "bot-bottle.yaml"
    path.write_text(text)
    mounted = resolve(LoadedManifest(parse_manifest(text), path, "sha256:test"), "c", {})
    store = StateStore(tmp_path / "home")
    _, _, started = launch(mounted, world, store, keep=True)
    kept = store.load(started[0].slug)
    assert not list((store.root / "locks" / "workspaces").glob("*.holder"))  # released

    other = workspace_lock(store.root / "locks", "mount", str(tmp_path / "ws"), False)
    assert other is not None
    other.acquire().name("c-other-0001")
    world.events.clear()
    for existing in (None, kept):
        with pytest.raises(WorkspaceBusy, match="in use by bottle c-other-0001"):
            launch(mounted, world, store, existing=existing)
    assert world.events == [] and [m.slug for m in store.all()] == [kept.slug]
    assert store.load(kept.slug).status == "stopped"

    rc = run_bottle(
        mounted, manifest_path="m.yaml", host_env={}, store=store, existing=kept,
        options=RunOptions(backend="fake", share_workspace=True), sidecars=FakeSidecars(world),
    )  # fmt: skip
    assert rc == 7
    other.release()
