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
import select
import signal
import threading
from collections.abc import Mapping

from bot_bottle.state.process_identity import hold

ENV = "BOT_BOTTLE_LAUNCHER"


def token(pid: int, identity: str | None) -> str:
    """What `ENV` holds for the launcher `pid` (with its recorded identity)."""
    return f"{pid}:{identity}" if identity else str(pid)


def follow(env: Mapping[str, str]) -> None:
    """In a sidecar: SIGTERM this process once the launcher `env` names is gone (now,
    if it already is). Without `ENV` (a sidecar started by hand) nothing is followed."""
    raw = env.get(ENV, "")
    if not raw:
        return
    pid, _, identity = raw.partition(":")
    held = hold(int(pid), identity or None) if pid.isdigit() else None

    def wait() -> None:
        if held is not None:
            select.select([held.pidfd], [], [])  # readable once the process has exited
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=wait, name="lifeline", daemon=True).start()
