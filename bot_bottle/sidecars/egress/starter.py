"""Start one bottle's egress sidecar (called by the launcher).

Two ways, same result (a process in its own session, listening on the bottle's Unix
socket, credentials only in its environment):
- cold: spawn `python -m bot_bottle egress serve ...` (pays the ~0.7 s mitmproxy import);
- warm: ask the egress zygote (`zygote.py`), a pre-imported process, to fork one.
"""

from __future__ import annotations

from pathlib import Path

from bot_bottle.executor import Cmd, Executor
from bot_bottle.sidecars.egress import zygote
from bot_bottle.sidecars.egress.request import EgressRequest
from bot_bottle.sidecars.process import SidecarError, SidecarHandle, spawn_sidecar


def start_egress_cold(req: EgressRequest, executor: Executor) -> SidecarHandle:
    req.confdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    cmd = Cmd(req.argv(), env=req.process_env(), cwd=str(req.socket.parent))
    return spawn_sidecar("egress", cmd, req.log, req.socket, executor)


def start_egress(req: EgressRequest, executor: Executor, socket: Path | None) -> SidecarHandle:
    """Warm through the zygote listening at `socket` when one answers, else cold."""
    if socket is not None and socket.exists():
        try:
            return zygote.request_egress(socket, req)
        except (OSError, SidecarError):
            pass  # a stale zygote socket: start cold instead
    return start_egress_cold(req, executor)
