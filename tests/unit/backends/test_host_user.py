"""Who the agent is on the host: never root. A root launcher runs it as the mounted
workspace's owner, or as a dedicated uid that owns nothing else; a root-owned workspace
is refused with the fix; a launcher that is not root runs it as itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot_bottle.backends import host_user
from bot_bottle.backends.host_user import DEDICATED, HostUser, agent_host_user
from bot_bottle.backends.namespace import sandbox
from bot_bottle.backends.spec import BottleSpec
from bot_bottle.errors import UnsafeWorkspace


def test_launcher_not_root_runs_the_agent_as_itself() -> None:
    assert agent_host_user("mount", "/anything") is None
    assert agent_host_user("none", "") is None


def test_root_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host_user, "_euid", lambda: 0)
    monkeypatch.setattr(host_user, "_owner_of", lambda p: (1000, 1001))
    assert agent_host_user("mount", "/ws") == HostUser(1000, 1001)
    assert agent_host_user("copy", "/ws") == DEDICATED
    assert agent_host_user("none", "") == DEDICATED
    monkeypatch.setattr(host_user, "_owner_of", lambda p: (0, 0))
    with pytest.raises(UnsafeWorkspace) as info:
        agent_host_user("mount", "/ws")
    assert "chown" in info.value.fix and "copy" in info.value.fix


def test_dedicated_uid_is_outside_useradds_and_systemds_ranges() -> None:
    assert 60000 < DEDICATED.uid < 61184 and DEDICATED.gid == DEDICATED.uid


def test_root_launcher_stages_bottle_files_then_drops_to_the_user(tmp_path: Path) -> None:
    spec = BottleSpec(slug="a-b-c", state_dir=tmp_path / "s", workspace_mode="mount",
                      workspace_path=str(tmp_path / "ws"))  # fmt: skip
    cmd = sandbox.bwrap_cmd(spec, ["sh"], {}, user=HostUser(1000, 1001))
    argv = list(cmd.argv)
    drop = argv.index("/usr/bin/setpriv")
    assert argv[drop:drop + 6] == ["/usr/bin/setpriv", "--reuid=1000", "--regid=1001",
                                   "--clear-groups", "--no-new-privs", "--"]  # fmt: skip
    outer, inner = argv[:drop], argv[drop + 6 :]
    assert "--unshare-user" not in outer and inner[1] == "--unshare-user"
    # The staging bwrap dies with the launcher and takes its PID namespace along.
    assert {"--unshare-pid", "--die-with-parent"} <= set(outer)
    stage = sandbox.STAGE
    assert outer[outer.index(str(tmp_path / "s" / "home")) + 1] == f"{stage}/home"
    assert inner[inner.index(f"{stage}/home") + 1] == "/home/agent"
    assert inner[inner.index(f"{stage}/workspace") + 1] == "/workspace"
    # Nothing of the state dir or the workspace is named to the unprivileged bwrap.
    assert not any(str(tmp_path) in a for a in inner)
