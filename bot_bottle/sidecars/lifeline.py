"""A sidecar ends with its bottle's launcher, however the launcher ends.

The launcher stops its sidecars on its way out. Killed outright (SIGKILL, the OOM
killer) it cannot, and they ran on, an egress holding the bottle's credentials and
listening for a bottle that was gone, until the next launch or `gc` found them. So a
sidecar is told which process its launcher is (`ENV`: `PID:IDENTITY`, the identity of
`state/process_identity`, so a pid taken over by another process is not mistaken for
it), holds that process by a pidfd, and once it is gone sends itself SIGTERM: its
usual stop, which writes its last audit records. A sidecar that `resume` restarts in a
degraded bottle follows the bottle's launcher, not the `resume` that started it.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Mapping

from bot_bottle.state.process_identity import wait_gone

ENV = "BOT_BOTTLE_LAUNCHER"
POLL = 1.0  # seconds between looks where there are no pidfds (old kernels, filters)


def token(pid: int, ident: str | None) -> str:
    """What `ENV` holds for the launcher `pid` (with its recorded identity)."""
    return f"{pid}:{ident}" if ident else str(pid)


def follow(env: Mapping[str, str]) -> None:
    """In a sidecar, once it can stop cleanly: SIGTERM this process when the launcher
    `env` names is gone (at once, if it already is). Without `ENV` (a sidecar started
    by hand) nothing is followed."""
    raw = env.get(ENV, "")
    if not raw:
        return
    pid_s, _, recorded = raw.partition(":")
    pid = int(pid_s) if pid_s.isdigit() else 0
    threading.Thread(target=_wait, args=(pid, recorded or None), name="lifeline",
                     daemon=True).start()  # fmt: skip


def _wait(pid: int, recorded: str | None) -> None:
    if pid > 0:
        wait_gone(pid, recorded, POLL)
    _stop()


def _stop() -> None:
    os.kill(os.getpid(), signal.SIGTERM)
