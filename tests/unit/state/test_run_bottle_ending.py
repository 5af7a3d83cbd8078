"""`run_bottle` says why a session ended (issue 12, item 1), with the fakes of
test_run_bottle: a `stop` from another terminal while the agent runs or while the
bottle is still starting, and an agent that exits on its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_run_bottle import FakeSidecars, World, plan, world

from bot_bottle.launch import RunOptions, run_bottle
from bot_bottle.plan.model import BottlePlan
from bot_bottle.state.ending import Ending, StopRequest
from bot_bottle.state.store import StateStore

__all__ = ["plan", "world"]


def _launch(plan: BottlePlan, world: World, store: StateStore, stop_at: str = "",
            keep: bool = False) -> tuple[int | str, list[Ending]]:  # fmt: skip
    """Run; at step `stop_at`, do what `bot-bottle stop` does: leave its request, then
    SIGTERM the launcher (World.term)."""
    endings: list[Ending] = []
    step = world.step

    def stepped(name: str) -> None:
        if name == stop_at:
            (meta,) = store.all()
            store.update(meta.slug, extra={"stop_request": StopRequest.now("stop").to_json()})
        step(name)

    world.step = stepped  # type: ignore[method-assign]
    world.term = stop_at
    try:
        rc: int | str = run_bottle(
            plan, manifest_path="m.yaml", options=RunOptions(backend="fake", keep=keep),
            host_env={}, store=store, sidecars=FakeSidecars(world), on_ended=endings.append,
        )  # fmt: skip
    except SystemExit as e:
        rc = f"SystemExit({e.code})"
    return rc, endings


def test_agent_exit_is_reported_with_its_code(
    plan: BottlePlan, world: World, tmp_path: Path
) -> None:
    rc, endings = _launch(plan, world, StateStore(tmp_path / "home"))
    assert rc == 7
    (e,) = endings
    assert e.exit_code == 7 and e.reason.startswith("the agent exited with code 7")


@pytest.mark.parametrize("keep", [False, True])
def test_stopped_while_starting_says_so(
    plan: BottlePlan, world: World, tmp_path: Path, keep: bool
) -> None:
    store = StateStore(tmp_path / "home")
    rc, endings = _launch(plan, world, store, stop_at="start egress", keep=keep)
    assert rc == "SystemExit(143)"
    (e,) = endings
    assert "stopped by `bot-bottle stop` from another terminal" in e.reason
    assert "while it was starting" in e.reason and e.exit_code == 143
    assert "attach" not in world.events
