"""How the gate's own git processes authenticate to upstream, from the host.

ssh URLs use the host's key or agent: `BOT_BOTTLE_GIT_SSH_KEY` (a key file path) and
optionally `BOT_BOTTLE_GIT_SSH_KNOWN_HOSTS` build `GIT_SSH_COMMAND`; otherwise an
inherited `GIT_SSH_COMMAND` / `SSH_AUTH_SOCK` is used as is. https URLs get the token
in the remote's `token_slot` env var as an `http.extraHeader`, passed through
`GIT_CONFIG_*` env (never argv, which other processes can read in /proc).
Local paths need nothing.
"""

from __future__ import annotations

import base64
import shlex
from collections.abc import Mapping

from bot_bottle.errors import CredentialError
from bot_bottle.sidecars.git_gate.config import RemoteConfig

SSH_KEY_ENV = "BOT_BOTTLE_GIT_SSH_KEY"
SSH_KNOWN_HOSTS_ENV = "BOT_BOTTLE_GIT_SSH_KNOWN_HOSTS"


def upstream_env(remote: RemoteConfig, host_env: Mapping[str, str]) -> dict[str, str]:
    """The environment for git commands that talk to `remote`'s upstream."""
    env = dict(host_env)
    # Never prompt: a gate with no terminal must fail, not hang.
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.setdefault("GIT_SSH_VARIANT", "ssh")
    key = host_env.get(SSH_KEY_ENV)
    if key:
        opts = ["-i", key, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"]
        known = host_env.get(SSH_KNOWN_HOSTS_ENV)
        if known:
            opts += ["-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes"]
        env["GIT_SSH_COMMAND"] = shlex.join(["ssh", *opts])
    if remote.token_slot:
        token = host_env.get(remote.token_slot)
        if not token:
            raise CredentialError(
                f"remote {remote.name!r}: token slot {remote.token_slot} is empty",
                fix="set the host variable named by the remote's token_ref",
            )
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        n = int(env.get("GIT_CONFIG_COUNT", "0") or 0)
        env[f"GIT_CONFIG_KEY_{n}"] = f"http.{remote.url}.extraHeader"
        env[f"GIT_CONFIG_VALUE_{n}"] = f"Authorization: Basic {basic}"
        env["GIT_CONFIG_COUNT"] = str(n + 1)
    return env
