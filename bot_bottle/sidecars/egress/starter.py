"""Start one bottle's egress sidecar (called by the launcher).

Two ways, same result (a process in its own session, listening on the bottle's Unix
socket, credentials only in its environment):
- cold: spawn `python -m bot_bottle egress serve ...` (pays the ~0.7 s mitmproxy import);
- warm: ask the per-user helper (`helper.py`: the zygote, `zygote.py`, started on first
  use), a pre-imported process, to fork one.
"""

from __future__ import annotations

from pathlib import Path

from bot_bottle.executor import Cmd, Executor
from bot_bottle.sidecars.egress import helper, zygote
from bot_bottle.sidecars.egress.request import EgressRequest
from bot_bottle.sidecars.process import SidecarError, SidecarHandle, spawn_sidecar


def start_egress_cold(req: EgressRequest, executor: Executor) -> SidecarHandle:
    req.confdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    cmd = Cmd(req.argv(), env=req.process_env(), cwd=str(req.socket.parent))
    return spawn_sidecar("egress", cmd, req.log, req.socket, executor)


def start_egress(req: EgressRequest, executor: Executor, run_dir: Path | None) -> SidecarHandle:
    """Warm through the per-user helper under `run_dir` (started now if none runs), or
    cold when the helper is turned off or cannot start or answer."""
    if run_dir is not None and helper.enabled():
        try:
            return zygote.request_egress(helper.ensure(run_dir, executor), req)
        except (OSError, SidecarError):
            pass  # the cold path gives the same sidecar, only slower
    return start_egress_cold(req, executor)
