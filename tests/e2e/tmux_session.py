"""A terminal for the e2e tests: one private tmux server running one command, read
back with `capture-pane` and driven with `send-keys`, as a person at a terminal would."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

EXIT_MARK = "BB-EXITED rc="


class TmuxSession:
    def __init__(self, tmp: Path, name: str) -> None:
        self.socket = str(tmp / f"tmux-{name}.sock")
        self.name = name
        self.log: list[str] = []  # every screen seen, for failure messages

    def _tmux(self, *args: str) -> str:
        r = subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True,
                           text=True, check=False, timeout=30)  # fmt: skip
        assert r.returncode == 0, f"tmux {args[0]}: {r.stderr}"
        return r.stdout

    def start_bb(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        """Run `bot-bottle ARGS` in a 160x45 terminal with exactly `env`; the pane prints
        EXIT_MARK and the exit code when it ends, and stays open to be read."""
        argv = [sys.executable, "-m", "bot_bottle", *args]
        envs = " ".join(shlex.quote(f"{k}={v}") for k, v in env.items())
        line = (f"cd {shlex.quote(str(cwd))} && env -i {envs} {shlex.join(argv)}; "
                f"echo '{EXIT_MARK}'$?; sleep 600")  # fmt: skip
        self._tmux("new-session", "-d", "-s", self.name, "-x", "160", "-y", "45", line)

    def screen(self) -> str:
        out = self._tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", self.name)
        if not self.log or self.log[-1] != out:
            self.log.append(out)
        return out

    def seen(self, text: str) -> bool:
        """Whether `text` was on any screen captured so far."""
        return any(text in s for s in self.log)

    def wait(self, *texts: str, timeout: float = 90) -> str:
        """Poll until one of `texts` is on the screen; return which."""
        end = time.monotonic() + timeout
        while True:
            s = self.screen()
            for t in texts:
                if t in s:
                    return t
            if time.monotonic() > end:
                raise AssertionError(f"none of {texts!r} appeared; screen:\n{s}")
            time.sleep(0.2)

    def wait_more(self, text: str, timeout: float = 90) -> None:
        """Poll until `text` is on the screen more often than it is now (a new reply,
        when a resumed conversation already shows the old one)."""
        before = self.screen().count(text)
        end = time.monotonic() + timeout
        while self.screen().count(text) <= before:
            if time.monotonic() > end:
                raise AssertionError(f"no new {text!r}; screen:\n{self.log[-1]}")
            time.sleep(0.2)

    def type(self, text: str) -> None:
        self._tmux("send-keys", "-t", self.name, "-l", text)
        time.sleep(0.3)  # the TUI reads typed text and Enter apart
        self._tmux("send-keys", "-t", self.name, "Enter")

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", self.name, *keys)

    def kill(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True,
                       check=False)  # fmt: skip
