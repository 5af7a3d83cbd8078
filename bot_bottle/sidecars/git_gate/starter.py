"""Start the git gate for one bottle (called by the launcher).

Writes the non-secret config, spawns `bot-bottle git-gate serve` on the bottle's
socket with only the host's upstream credentials in its environment, and waits for
its READY line (never a sleep). Inside the bottle, git's `url.<gate>/<name>.git
.insteadOf` (written by `provision.steps`) sends each remote's URL to the gate.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from bot_bottle.executor import Cmd, Executor, ProcessExecutor
from bot_bottle.plan.model import BottlePlan, gate_token_slots
from bot_bottle.sidecars import lifeline
from bot_bottle.sidecars.git_gate.config import config_json
from bot_bottle.sidecars.git_gate.push_check import CANARIES_ENV
from bot_bottle.sidecars.git_gate.upstream import SSH_KEY_ENV, SSH_KNOWN_HOSTS_ENV
from bot_bottle.sidecars.process import SidecarHandle, spawn_sidecar

# The host's ways to reach upstreams: ssh agent or key, and the CA settings an https
# remote behind a private or intercepting CA needs.
PASSED_ENV = ("PATH", "LANG", "TZ", "SSH_AUTH_SOCK", "GIT_SSH_COMMAND", SSH_KEY_ENV,
              SSH_KNOWN_HOSTS_ENV, "GIT_SSL_CAINFO", "SSL_CERT_FILE", "SSL_CERT_DIR")  # fmt: skip


def start_git_gate(
    plan: BottlePlan,
    gdir: Path,
    socket: Path,
    audit: Path,
    canaries: Sequence[str] = (),
    protected: Mapping[str, str] | None = None,
    tokens: Mapping[str, str] | None = None,
    executor: Executor | None = None,
    launcher: str = "",
) -> SidecarHandle:
    """`canaries` and `protected` (`EGRESS_PROTECT_n` -> value) let the push scan name a
    planted decoy or a protected host value, as egress DLP does; `tokens`
    (`GIT_GATE_TOKEN_n` -> value) are the https remotes' credentials; it ends with the
    process `launcher` names (`sidecars.lifeline`)."""
    executor = executor or ProcessExecutor()
    cfg = gdir / "gate.json"
    cfg.write_text(config_json(plan.git_remotes, gate_token_slots(plan.git_remotes)), "utf-8")
    env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
    env["HOME"] = str(gdir)
    env.update(protected or {})
    env.update(tokens or {})
    env[CANARIES_ENV] = json.dumps(list(canaries))
    if launcher:
        env[lifeline.ENV] = launcher
    argv = [sys.executable, "-m", "bot_bottle", "git-gate", "serve", "--config", str(cfg),
            # relative to cwd (the sockets dir), as for egress: a Unix socket path is
            # limited to 107 bytes and state dirs can be deeper than that
            "--listen", f"unix:{socket.name}", "--audit-log", str(audit),
            "--state", str(gdir / "state")]  # fmt: skip
    cmd = Cmd(tuple(argv), env=env, cwd=str(socket.parent))
    return spawn_sidecar("git-gate", cmd, gdir / "git-gate.log", socket, executor)
