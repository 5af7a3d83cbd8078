"""A microVM bottle's files on the host (`Layout`) and provisioning into it
(`MicrovmTarget`): HOME and the workspace are host directories the guest mounts over
virtiofs, so files are written on the host, as on the namespace backend."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot_bottle.backends.host_dirs import HostDirs
from bot_bottle.backends.host_user import HostUser
from bot_bottle.backends.microvm.guest_inputs import HOME, WORKSPACE
from bot_bottle.backends.spec import BottleSpec
from bot_bottle.errors import BackendUnavailable
from bot_bottle.executor import CommandResult


@dataclass(frozen=True)
class Layout:
    """A microVM bottle's files in its state dir."""

    state_dir: Path

    @property
    def home(self) -> Path:
        return self.state_dir / "home"

    @property
    def workspace_copy(self) -> Path:
        return self.state_dir / "workspace"

    @property
    def vm(self) -> Path:
        """QEMU's and virtiofsd's files (sockets, the console log): root's alone."""
        return self.state_dir / "vm"

    def workspace(self, spec: BottleSpec) -> Path | None:
        if spec.workspace_mode == "mount":
            return Path(spec.workspace_path)
        if spec.workspace_mode == "copy":
            return self.workspace_copy
        return None


class MicrovmTarget:
    """Provisioning into a microVM bottle: HOME and the workspace are host directories
    the guest mounts, so files are written on the host, through `ConfinedDir` (they hold
    what the agent left there: nothing in them is followed)."""

    def __init__(self, spec: BottleSpec, user: HostUser) -> None:
        self._spec = spec
        self._layout = Layout(spec.state_dir)
        self._dirs = HostDirs(self._layout.home, self._layout.workspace(spec),
                              (user.uid, user.gid), HOME, WORKSPACE)  # fmt: skip

    def ready(self) -> None:
        """`prepare` returned a finished bottle: nothing runs in the background."""

    @property
    def home(self) -> str:
        return HOME

    @property
    def workspace(self) -> str:
        return WORKSPACE if self._layout.workspace(self._spec) else ""

    def put_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self._dirs.put_file(path, data, mode)

    def read_file(self, path: str, limit: int) -> bytes | None:
        return self._dirs.read_file(path, limit)

    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> CommandResult:
        raise BackendUnavailable(
            "a microVM bottle runs commands only in its attached session",
            "provision with files (put_file), not commands",
        )
