"""`spawn_sidecar` over the executor seam, with no process: the READY line makes the
handle; output ending before it is an error that carries the sidecar's log."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes.executor import RecordingExecutor

from bot_bottle.executor import Cmd
from bot_bottle.sidecars.process import SidecarError, spawn_sidecar


def test_ready_makes_the_handle(tmp_path: Path) -> None:
    ex = RecordingExecutor(spawned={"serve": b"starting\nREADY unix:/s\n"})
    h = spawn_sidecar("egress", Cmd(("serve",)), tmp_path / "log", tmp_path / "s", ex)
    assert (h.name, h.socket, h.mode) == ("egress", tmp_path / "s", "cold")
    assert [c.argv for c in ex.calls] == [("serve",)]
    assert (tmp_path / "log").stat().st_mode & 0o777 == 0o600


def test_an_exit_before_ready_names_the_log(tmp_path: Path) -> None:
    (tmp_path / "log").write_text("line 1\nTraceback: boom\n")
    ex = RecordingExecutor(spawned={"serve": b"no ready here\n"})
    with pytest.raises(SidecarError, match="egress exited before it was ready") as e:
        spawn_sidecar("egress", Cmd(("serve",)), tmp_path / "log", tmp_path / "s", ex)
    assert "Traceback: boom" in e.value.message
