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

UPSTREAM_ENV_NAMES = "BOT_BOTTLE_GATE_UPSTREAM_ENV"
"""Set by the gate for its hook: the names (never values) of the variables that make
up the upstream environment, so the hook can forward with exactly those."""
# What lets the forwarding `git push` read the pushed objects while they still sit in
# receive-pack's quarantine. Git strips both from a local transport's child (they are
# in its `local_repo_env`), unlike GIT_QUARANTINE_PATH.
QUARANTINE_OBJECT_ENV = ("GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES")
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


def hook_env(upstream: Mapping[str, str]) -> dict[str, str]:
    """`upstream` plus the list of its names, for http-backend and so the hook."""
    return {**upstream, UPSTREAM_ENV_NAMES: ",".join(sorted(upstream))}


def forward_env(hook: Mapping[str, str]) -> dict[str, str]:
    """The environment to forward a push with, from the hook's own: the upstream
    environment the gate set up and the quarantine's object directories, nothing else.

    The hook runs inside receive-pack's quarantine (GIT_QUARANTINE_PATH, GIT_DIR, ...)
    and under http-backend's CGI variables, some the agent's request chose
    (GIT_PROTOCOL, QUERY_STRING, CONTENT_TYPE). Passed on, they reach a local
    upstream's receive-pack, which then refuses every ref update ("ref updates
    forbidden inside quarantine environment"), or another transport's helpers.
    """
    names = hook.get(UPSTREAM_ENV_NAMES)
    if names is None:
        raise RuntimeError(f"{UPSTREAM_ENV_NAMES} is not set: the hook runs only under the gate")
    env = {k: hook[k] for k in names.split(",") if k in hook}
    env.update({k: hook[k] for k in QUARANTINE_OBJECT_ENV if k in hook})
    return env
