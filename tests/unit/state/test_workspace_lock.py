"""The workspace lock's rules, on real files and real `flock`s (no bottle): who is
refused, what the refusal names, and that a killed holder leaves nothing locked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bot_bottle.state.workspace_lock import WorkspaceBusy, workspace_lock


def _lock(root: Path, path: Path, share: bool = False):  # type: ignore[no-untyped-def]
    lock = workspace_lock(root, "mount", str(path), share)
    assert lock is not None
    return lock


def test_second_holder_is_refused_with_the_first_ones_slug(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    first = _lock(tmp_path / "locks", ws).acquire()
    first.name("a-moss-1234")
    with pytest.raises(WorkspaceBusy) as e:
        _lock(tmp_path / "locks", ws).acquire()
    assert "in use by bottle a-moss-1234" in e.value.message
    assert "--share-workspace" in e.value.fix and "bot-bottle stop a-moss-1234" in e.value.fix
    first.release()
    _lock(tmp_path / "locks", ws).acquire().release()


def test_a_holder_without_a_slug_yet_is_named_by_its_pid(tmp_path: Path) -> None:
    _lock(tmp_path, tmp_path).acquire()
    with pytest.raises(WorkspaceBusy, match=f"still starting \\(launcher pid {os.getpid()}\\)"):
        _lock(tmp_path, tmp_path).acquire()


def test_nested_and_linked_workspaces_are_the_same_files(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "sub").mkdir(parents=True)
    (tmp_path / "link").symlink_to(ws)
    _lock(tmp_path / "locks", ws / "sub").acquire().name("a-sub-0001")
    for other in (ws, tmp_path / "link", tmp_path / "link" / "sub"):
        with pytest.raises(WorkspaceBusy, match="a-sub-0001"):
            _lock(tmp_path / "locks", other).acquire()
    sibling = tmp_path / "ws2"
    sibling.mkdir()
    _lock(tmp_path / "locks", sibling).acquire()  # a prefix of the name is not a parent


def test_sharing_registers_too(tmp_path: Path) -> None:
    _lock(tmp_path / "l", tmp_path).acquire().name("a-one-0001")
    _lock(tmp_path / "l", tmp_path, share=True).acquire().name("a-two-0002")
    with pytest.raises(WorkspaceBusy) as e:
        _lock(tmp_path / "l", tmp_path).acquire()
    assert "a-one-0001" in e.value.message and "a-two-0002" in e.value.message


def test_private_workspaces_take_no_lock(tmp_path: Path) -> None:
    assert workspace_lock(tmp_path, "copy", str(tmp_path), False) is None
    assert workspace_lock(tmp_path, "none", "", False) is None


def test_a_killed_holder_leaves_nothing_locked(tmp_path: Path) -> None:
    code = (
        "import sys, time; from pathlib import Path\n"
        "from bot_bottle.state.workspace_lock import workspace_lock\n"
        "workspace_lock(Path(sys.argv[1]), 'mount', sys.argv[2], False).acquire().name('a-x-0001')\n"
        "print('held', flush=True); time.sleep(300)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "l"), str(tmp_path)],
                         stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert p.stdout is not None and p.stdout.readline() == "held\n"
        with pytest.raises(WorkspaceBusy, match="a-x-0001"):
            _lock(tmp_path / "l", tmp_path).acquire()
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    _lock(tmp_path / "l", tmp_path).acquire().name("a-y-0002")
    assert len(list((tmp_path / "l" / "workspaces").glob("*.holder"))) == 1  # the dead one went


def test_the_lock_is_not_inherited_by_children(tmp_path: Path) -> None:
    """A sidecar the launcher started, left running when it was killed, must not keep
    the workspace locked: the descriptor is close-on-exec."""
    _lock(tmp_path / "l", tmp_path).acquire()
    out = subprocess.run(["ls", "-l", "/proc/self/fd"], capture_output=True, text=True).stdout
    assert ".holder" not in out
