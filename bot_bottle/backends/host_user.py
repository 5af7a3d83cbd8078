"""Which host user a bottle's agent is, so no file it leaves carries more privilege.

bot-bottle never runs an agent as host root. When the launcher is root:
- with a `mount` workspace the agent runs as the workspace's owner, so what it
  creates belongs to the user whose directory it is (as when that user launches);
  a root-owned workspace is refused, since the agent would then be root over it;
- otherwise (no workspace, or a `copy` in the state dir) it runs as `DEDICATED`, a
  uid that belongs to no host user (above useradd's range, below systemd's dynamic
  users), which owns nothing on the host but the bottle's HOME.
A launcher that is not root runs its agent as itself (the namespace backend's user
namespace maps the agent to the launcher's uid); the Docker backend applies the same
mount rule on its own (see `docker.layout.agent_user`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from bot_bottle.errors import UnsafeWorkspace

DEDICATED_UID = 60100


@dataclass(frozen=True)
class HostUser:
    uid: int
    gid: int

    @property
    def spec(self) -> str:
        return f"{self.uid}:{self.gid}"


DEDICATED = HostUser(DEDICATED_UID, DEDICATED_UID)


def _euid() -> int:
    return os.geteuid()


def _owner_of(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_uid, st.st_gid


def launcher_is_root() -> bool:
    return _euid() == 0


def workspace_owner(path: str) -> HostUser:
    """The owner of a `mount` workspace, who the agent works as; never root. A group of
    0 is replaced by the owner's uid: the agent never gets root's group either."""
    uid, gid = _owner_of(path)
    if uid == 0:
        raise UnsafeWorkspace(
            f"workspace {path} is owned by root: bot-bottle runs the agent as the "
            "workspace's owner and never as root",
            f"give it to the user the agent should work as (`chown -R USER: {path}`), "
            "or use `workspace: {mode: copy}`",
        )
    return HostUser(uid, gid or uid)


def agent_host_user(workspace_mode: str, workspace_path: str) -> HostUser | None:
    """Who a namespace agent runs as on the host: None for "the launcher itself"."""
    if _euid() != 0:
        return None
    if workspace_mode == "mount":
        return workspace_owner(workspace_path)
    return DEDICATED
