"""The gate's config file (non-secret JSON), and the URL a bottle uses for a remote.

    {"remotes": [{"name": "origin", "url": "ssh://git@host/x.git",
                  "protected_refs": ["main"], "allowed_refs": ["agent/*"],
                  "token_slot": "GIT_GATE_TOKEN_0"}]}

Credentials never appear here: `token_slot` names the env var of the gate process
that holds an https token; ssh keys reach the gate through its environment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot_bottle.errors import ManifestError
from bot_bottle.policy.refs import RefRules

if TYPE_CHECKING:  # the hook imports this module per push: keep the plan layer out
    from bot_bottle.plan.model import GitRemotePlan

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")


def gate_remote_url(remote_name: str, port: int, host: str = "127.0.0.1") -> str:
    """What remote `remote_name` points at inside the bottle, with the gate reachable on
    `host:port` there (the backend's forwarder maps that port to the gate's socket)."""
    check_remote_name(remote_name)
    return f"http://{host}:{port}/{remote_name}.git"


def check_remote_name(name: str) -> str:
    """A remote name becomes a URL path segment and a directory name: keep it plain."""
    if not _NAME.match(name) or name.endswith(".git") or ".." in name:
        raise ValueError(f"invalid remote name {name!r} (letters, digits, . _ -)")
    return name


@dataclass(frozen=True)
class RemoteConfig:
    """One upstream the gate fronts."""

    name: str
    url: str
    rules: RefRules
    token_slot: str = ""


@dataclass(frozen=True)
class GateConfig:
    remotes: tuple[RemoteConfig, ...]

    def remote(self, name: str) -> RemoteConfig | None:
        return next((r for r in self.remotes if r.name == name), None)


def _strs(item: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = item.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ManifestError("expected a list of strings", path=f"{where}.{key}")
    return list(value)


def parse_config(data: object, source: str = "git-gate config") -> GateConfig:
    """Validate the decoded JSON; errors name the field (`remotes[0].url`)."""
    if not isinstance(data, dict) or not isinstance(data.get("remotes"), list):
        raise ManifestError("expected an object with a 'remotes' list", path=source)
    remotes: list[RemoteConfig] = []
    for i, item in enumerate(data["remotes"]):
        where = f"{source}: remotes[{i}]"
        if not isinstance(item, dict):
            raise ManifestError("expected an object", path=where)
        name, url = item.get("name"), item.get("url")
        if not isinstance(name, str):
            raise ManifestError("expected a string", path=f"{where}.name")
        try:
            check_remote_name(name)
        except ValueError as e:
            raise ManifestError(str(e), path=f"{where}.name") from None
        if not isinstance(url, str) or not url or url.startswith("-"):
            raise ManifestError("expected an upstream URL or path", path=f"{where}.url")
        slot = item.get("token_slot", "")
        if not isinstance(slot, str):
            raise ManifestError("expected an env var name", path=f"{where}.token_slot")
        try:
            rules = RefRules.from_patterns(
                _strs(item, "protected_refs", where), _strs(item, "allowed_refs", where)
            )
        except ValueError as e:
            raise ManifestError(str(e), path=where) from None
        if any(r.name == name for r in remotes):
            raise ManifestError(f"duplicate remote {name!r}", path=f"{where}.name")
        remotes.append(RemoteConfig(name, url, rules, slot))
    return GateConfig(tuple(remotes))


def load_config(path: Path | str) -> GateConfig:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ManifestError(f"cannot read git-gate config: {e}", path=str(path)) from None
    return parse_config(data, str(path))


def config_json(remotes: Sequence[GitRemotePlan], token_slots: Mapping[str, str] = {}) -> str:
    """The config file for a plan's remotes; `token_slots` maps remote name to the env
    slot that will hold its https token."""
    return json.dumps(
        {
            "remotes": [
                {
                    "name": r.name,
                    "url": r.url,
                    "protected_refs": list(r.protected_refs),
                    "allowed_refs": list(r.allowed_refs),
                    **({"token_slot": token_slots[r.name]} if r.name in token_slots else {}),
                }
                for r in remotes
            ]
        },
        indent=2,
    )
