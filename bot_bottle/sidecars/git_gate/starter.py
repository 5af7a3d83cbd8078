"""Start the git gate for one bottle: the `launch.GIT_GATE` starter.

Writes the non-secret config, spawns `bot-bottle git-gate serve` on the bottle's
socket with only the host's upstream credentials in its environment, and waits for
its READY line (never a sleep). Inside the bottle, git's `url.<gate>/<name>.git
.insteadOf` (written by `provision.steps`) sends each remote's URL to the gate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from bot_bottle.backends.sidecar_proc import (
    READY_TIMEOUT,
    SidecarError,
    SidecarHandle,
    kill_group,
    wait_ready,
)
from bot_bottle.plan.model import BottlePlan
from bot_bottle.sidecars.git_gate.config import config_json
from bot_bottle.sidecars.git_gate.push_check import CANARIES_ENV
from bot_bottle.sidecars.git_gate.upstream import SSH_KEY_ENV, SSH_KNOWN_HOSTS_ENV

PASSED_ENV = ("PATH", "LANG", "TZ", "SSH_AUTH_SOCK", "GIT_SSH_COMMAND", SSH_KEY_ENV,
              SSH_KNOWN_HOSTS_ENV)  # fmt: skip


def start_git_gate(
    plan: BottlePlan,
    gdir: Path,
    socket: Path,
    audit: Path,
    canaries: Sequence[str] = (),
    protected: Mapping[str, str] | None = None,
) -> SidecarHandle:
    """`canaries` and `protected` (`EGRESS_PROTECT_n` -> value) let the push scan name a
    planted decoy or a protected host value, as egress DLP does."""
    cfg = gdir / "gate.json"
    cfg.write_text(config_json(plan.git_remotes), encoding="utf-8")
    env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
    env["HOME"] = str(gdir)
    env.update(protected or {})
    env[CANARIES_ENV] = json.dumps(list(canaries))
    argv = [sys.executable, "-m", "bot_bottle", "git-gate", "serve", "--config", str(cfg),
            # relative to cwd (the sockets dir), as for egress: a Unix socket path is
            # limited to 107 bytes and state dirs can be deeper than that
            "--listen", f"unix:{socket.name}", "--audit-log", str(audit),
            "--state", str(gdir / "state")]  # fmt: skip
    log = gdir / "git-gate.log"
    with open(log, "ab") as log_f:
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=socket.parent,
            stdout=subprocess.PIPE,
            stderr=log_f,
            start_new_session=True,
        )
    assert proc.stdout is not None
    try:
        wait_ready(proc.stdout.fileno(), time.monotonic() + READY_TIMEOUT)
    except SidecarError:
        kill_group(proc.pid)
        tail = "".join(f"\n    {x}" for x in log.read_text(errors="replace").splitlines()[-5:])
        raise SidecarError(f"git gate did not become ready{tail}", "`bot-bottle doctor`") from None
    return SidecarHandle("git-gate", proc.pid, socket, "cold")
