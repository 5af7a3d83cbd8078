"""Test double for the subprocess seam: records every `Cmd` instead of running it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import IO

from bot_bottle.executor import Cmd, CommandResult

NO_PID = 2**22
"""Linux never gives a pid this high (`pid_max` is at most 2**22), so signalling a
spawned double reaches no process (ProcessLookupError)."""


@dataclass
class SpawnedDouble:
    """A spawned command that never ran: its stdout holds `output` and then ends (a
    pipe with nothing behind it, so `wait_ready`'s select and os.read work on it), and
    it has already exited with `returncode`."""

    pid: int
    stdout: IO[bytes] | None
    returncode: int | None = 0

    def wait(self, timeout: float | None = None) -> int:
        return 0 if self.returncode is None else self.returncode


@dataclass
class RecordingExecutor:
    """Test double: records every `Cmd`; answers `run` from `results` (by argv[0]) or 0,
    and `spawn` with a process double (no process starts) whose stdout is `spawned`
    (by argv[0]) or empty."""

    calls: list[Cmd] = field(default_factory=list)
    results: dict[str, CommandResult] = field(default_factory=dict)
    spawned: dict[str, bytes] = field(default_factory=dict)

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
    ) -> SpawnedDouble:
        self.calls.append(cmd)
        r, w = os.pipe()
        try:
            os.write(w, self.spawned.get(cmd.argv[0], b""))  # scripts stay under a pipe's 64 KiB
        finally:
            os.close(w)
        return SpawnedDouble(NO_PID + len(self.calls), os.fdopen(r, "rb"))
