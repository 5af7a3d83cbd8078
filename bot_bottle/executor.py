"""Every external command as a value (`Cmd`) handed to an `Executor`: production
spawns it (`ProcessExecutor`); unit tests record it and assert on the argv. This is
the one seam for subprocesses (backends, sidecars, image builds), so it sits below
all of them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import termios
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Protocol


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


FD_PREFIX = "@fd:"
"""An argv token `@fd:NAME` is replaced by the number of the descriptor the executor
opened for `Cmd.fd_files[NAME]` (e.g. bwrap's `--seccomp @fd:seccomp`)."""


@dataclass(frozen=True)
class Cmd:
    """One external command. `env=None` inherits the caller's environment, which a
    backend must never do for a sandboxed process (it would leak host variables)."""

    argv: tuple[str, ...]
    env: Mapping[str, str] | None = None
    cwd: str | None = None
    stdin: bytes | None = None
    fd_files: Mapping[str, str] = field(default_factory=dict)
    # Descriptors already open (a listening socket), handed over like `fd_files`: passed
    # by number for `@fd:NAME`, and closed in this process once the command started.
    hand_fds: Mapping[str, int] = field(default_factory=dict)


class Process(Protocol):
    """What a caller of `Executor.spawn` uses of the process it started (a
    `subprocess.Popen` in production; a double without a process in unit tests)."""

    @property
    def pid(self) -> int: ...

    @property
    def stdout(self) -> IO[bytes] | None: ...

    @property
    def returncode(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


class Executor(Protocol):
    """Runs `Cmd`s. Production spawns them; tests record them."""

    def run(self, cmd: Cmd, *, timeout: float | None = None) -> CommandResult:
        """Run to completion with stdout/stderr captured."""

    def interactive(self, cmd: Cmd) -> int:
        """Run attached to this terminal; forward signals; return its exit code."""

    def spawn(
        self,
        cmd: Cmd,
        *,
        stdout: int | None = None,
        stderr: int | None = None,
        new_session: bool = True,
    ) -> Process:
        """Start in the background (own process group by default) and return it."""


def _resolve_fds(cmd: Cmd) -> tuple[list[str], list[int]]:
    fds: dict[str, int] = dict(cmd.hand_fds)
    for name, path in cmd.fd_files.items():
        fds[name] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    argv = [str(fds[a[len(FD_PREFIX) :]]) if a.startswith(FD_PREFIX) else a for a in cmd.argv]
    return argv, list(fds.values())


def _close(fds: Sequence[int]) -> None:
    for fd in fds:
        os.close(fd)


def _terminal_modes() -> list[Any] | None:
    """stdin's termios modes, when stdin is a terminal."""
    try:
        return termios.tcgetattr(0) if os.isatty(0) else None
    except termios.error:
        return None


def _restore_terminal(modes: list[Any] | None) -> None:
    if modes is None:
        return
    # Ignored meanwhile: were the launcher not in the foreground any more, setting the
    # modes would stop it with SIGTTOU instead of finishing its cleanup.
    old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        termios.tcsetattr(0, termios.TCSADRAIN, modes)
    except termios.error:
        pass
    finally:
        signal.signal(signal.SIGTTOU, old)


class ProcessExecutor:
    """The real executor: `subprocess`, with `fd_files` opened and passed by number."""

    def run(self, cmd: Cmd, *, timeout: float | None = None) -> CommandResult:
        argv, fds = _resolve_fds(cmd)
        try:
            p = subprocess.run(
                argv,
                env=cmd.env,
                cwd=cmd.cwd,
                input=cmd.stdin,
                capture_output=True,
                pass_fds=fds,
                timeout=timeout,
                check=False,
            )
        finally:
            _close(fds)
        return CommandResult(
            p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
        )

    def interactive(self, cmd: Cmd) -> int:
        """Child shares our TTY and process group, so the terminal delivers ^C and
        SIGWINCH to it directly; we ignore SIGINT/SIGQUIT meanwhile and forward
        SIGTERM/SIGHUP. Exit code: the child's, or 128+signal. The terminal's modes are
        put back as they were, however the child ended: a TUI killed by `stop` never
        restores the raw mode it set, and the shell would be left without echo or ^C."""
        modes = _terminal_modes()
        try:
            return self._interactive(cmd)
        finally:
            _restore_terminal(modes)

    def _interactive(self, cmd: Cmd) -> int:
        argv, fds = _resolve_fds(cmd)
        try:
            p = subprocess.Popen(
                argv,
                env=cmd.env,
                cwd=cmd.cwd,
                pass_fds=fds,
                stdin=None if cmd.stdin is None else subprocess.PIPE,
            )
        finally:
            _close(fds)
        forwarded = (signal.SIGTERM, signal.SIGHUP)
        old = {s: signal.getsignal(s) for s in (*forwarded, signal.SIGINT, signal.SIGQUIT)}
        got: list[int] = []

        def forward(signum: int, _frame: object) -> None:
            got.append(signum)
            p.send_signal(signum)

        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGQUIT, signal.SIG_IGN)
            for s in forwarded:
                signal.signal(s, forward)
            if cmd.stdin is not None and p.stdin:
                p.stdin.write(cmd.stdin)
                p.stdin.close()
            rc = p.wait()
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        if rc == 0 and got:
            # A client that exits cleanly on the signal it was given (`docker exec`
            # does) did not finish its work: report the signal, as a killed child would.
            return 128 + got[0]
        return 128 - rc if rc < 0 else rc

    def spawn(
        self,
        cmd: Cmd,
        *,
        stdout: int | None = None,
        stderr: int | None = None,
        new_session: bool = True,
    ) -> subprocess.Popen[bytes]:
        argv, fds = _resolve_fds(cmd)
        try:
            return subprocess.Popen(
                argv,
                env=cmd.env,
                cwd=cmd.cwd,
                pass_fds=fds,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=new_session,
            )
        finally:
            _close(fds)
