"""Test double for the subprocess seam: records every `Cmd` instead of running it."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field

from bot_bottle.executor import Cmd, CommandResult


@dataclass
class RecordingExecutor:
    """Test double: records every `Cmd`; answers `run` from `results` (by argv[0]) or 0."""

    calls: list[Cmd] = field(default_factory=list)
    results: dict[str, CommandResult] = field(default_factory=dict)

    def run(self, cmd: Cmd, *, timeout: float | None = None) -> CommandResult:
        self.calls.append(cmd)
        return self.results.get(cmd.argv[0], CommandResult(0, "", ""))

    def interactive(self, cmd: Cmd) -> int:
        self.calls.append(cmd)
        return 0

    def spawn(
        self,
        cmd: Cmd,
        *,
        stdout: int | None = None,
        stderr: int | None = None,
        new_session: bool = True,
    ) -> subprocess.Popen[bytes]:
        self.calls.append(cmd)
        return subprocess.Popen(["true"])
