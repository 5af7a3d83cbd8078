"""The environment the hook forwards a push with: the gate's upstream variables and
the quarantine's object directories, nothing of receive-pack's or the request's."""

from __future__ import annotations

import pytest

from bot_bottle.policy.refs import RefRules
from bot_bottle.sidecars.git_gate.config import RemoteConfig
from bot_bottle.sidecars.git_gate.upstream import (
    UPSTREAM_ENV_NAMES,
    forward_env,
    hook_env,
    upstream_env,
)


def test_forward_env_keeps_only_upstream_and_object_dirs() -> None:
    remote = RemoteConfig("origin", "https://h/x.git", RefRules(), "GIT_GATE_TOKEN_0")
    up = upstream_env(remote, {"PATH": "/bin", "HOME": "/g", "GIT_GATE_TOKEN_0": "t" * 20})
    hook = {
        **hook_env(up),
        # what http-backend and receive-pack add around the hook
        "GIT_DIR": ".",
        "GIT_QUARANTINE_PATH": "/m/objects/incoming-x",
        "GIT_OBJECT_DIRECTORY": "/m/objects/incoming-x",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES": "/m/objects",
        "GIT_PROTOCOL": "version=2",
        "QUERY_STRING": "service=git-receive-pack",
        "GIT_PUSH_OPTION_COUNT": "0",
    }
    env = forward_env(hook)
    assert env == {
        **up,
        "GIT_OBJECT_DIRECTORY": "/m/objects/incoming-x",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES": "/m/objects",
    }
    assert "GIT_CONFIG_KEY_0" in env  # the https token still travels (as config env)


def test_forward_env_needs_the_gate() -> None:
    with pytest.raises(RuntimeError, match=UPSTREAM_ENV_NAMES):
        forward_env({"PATH": "/bin"})
