"""Runs the user's notification hook when an agent asks its operator something.

The launcher runs it, on the host, for the bottle it launched: a thread polls the
bottle's request directory and runs the hook once per new request. Not the egress
sidecar, which sees the request first: it holds the bottle's credentials in its
environment and must never start a host command on the agent's behalf.

The request is agent-written data, so it reaches the hook only as JSON on stdin: never
in argv or the environment, where a shell or the hook's own parsing could act on it.
The hook runs in its own session with the user's home as its working directory (never
the workspace, which the agent writes), its output goes to `notify.log` in the
bottle's state directory, and after its timeout its whole process group is killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from bot_bottle.state.requests import AskRecord, RequestDir

if TYPE_CHECKING:
    from bot_bottle.state.user_config import NotifyHook

POLL = 0.5


def payload(slug: str, rec: AskRecord) -> bytes:
    """The JSON the hook reads: the request as `bot-bottle requests --json` lists it."""
    body = {"event": "request", "bottle": slug, **rec.view(), "reason": rec.ask.reason,
            "created": rec.created}  # fmt: skip
    return json.dumps(body, sort_keys=True).encode() + b"\n"


class RequestNotifier:
    """Watches one bottle's requests and runs `hook` for each new one, in turn."""

    def __init__(self, hook: NotifyHook, slug: str, requests: RequestDir, log: Path) -> None:
        self.hook = hook
        self.slug = slug
        self.requests = requests
        self.log = log
        self._stop = threading.Event()
        self._running: subprocess.Popen[bytes] | None = None
        self._seen = {r.id for r in requests.all()}  # asked before this launch: told then
        self._thread = threading.Thread(target=self._loop, name="notify", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        proc = self._running
        if proc is not None:
            _kill_group(proc)
        self._thread.join(timeout=2)

    def _loop(self) -> None:
        while not self._stop.wait(POLL):
            for rec in self.requests.all():
                if rec.id in self._seen or self._stop.is_set():
                    continue
                self._seen.add(rec.id)
                self.run_hook(rec)

    def run_hook(self, rec: AskRecord) -> int | None:
        """Run the hook for `rec`; its exit code, or None when it could not start or
        ran out of time (both noted in the log)."""
        fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "ab") as log:
            log.write(f"notify {rec.id}: {' '.join(self.hook.argv)}\n".encode())
            log.flush()
            try:
                proc = subprocess.Popen(
                    self.hook.argv, stdin=subprocess.PIPE, stdout=log, stderr=log,
                    cwd=os.path.expanduser("~"), start_new_session=True,
                )  # fmt: skip
            except OSError as e:
                log.write(f"notify {rec.id}: cannot start the hook: {e}\n".encode())
                return None
            self._running = proc
            try:
                assert proc.stdin is not None
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.write(payload(self.slug, rec))
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.close()
                return proc.wait(self.hook.timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                log.write(f"notify {rec.id}: killed after {self.hook.timeout:g} s\n".encode())
                return None
            finally:
                self._running = None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


@contextlib.contextmanager
def notifying(hook: NotifyHook, slug: str, requests: RequestDir, log: Path) -> Iterator[None]:
    """Run the hook for the bottle's new requests while the block runs."""
    notifier = RequestNotifier(hook, slug, requests, log)
    notifier.start()
    try:
        yield
    finally:
        notifier.stop()
