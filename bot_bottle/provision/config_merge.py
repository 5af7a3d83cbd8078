"""Merging bot-bottle's settings into an agent's own JSON config file.

An agent keeps state in its config (Claude Code: `~/.claude.json` holds per-project
trust, onboarding, tips). Replacing the file on every `resume` drops that state and
brings back the first-run dialogs; so provisioning merges instead. The file is the
agent's to write, so it is parsed as hostile input: size-limited by the reader,
anything that is not a JSON object is dropped, and bot-bottle's keys always win
(a value the agent wrote never survives where bot-bottle sets one).
"""

from __future__ import annotations

import json
from typing import Any

from bot_bottle.providers.base import WORKSPACE_KEY

# Claude's config grows with project entries; far past this it is not a config file.
LIMIT = 4 * 1024 * 1024


def parse_agent_config(data: bytes | None) -> dict[str, Any]:
    """The agent's config as a dict, or {} for absent, malformed or hostile content
    (not JSON, not an object, nested past the parser's recursion limit)."""
    if not data:
        return {}
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def merge(theirs: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """`theirs` with `ours` laid over it: objects merge key by key, anything else
    (lists included) is replaced by ours."""
    out = dict(theirs)
    for key, value in ours.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def place_workspace(ours: Any, workspace: str) -> Any:
    """`ours` with every WORKSPACE_KEY key renamed to `workspace` (dropped when the
    bottle has none)."""
    if not isinstance(ours, dict):
        return ours
    out = {}
    for key, value in ours.items():
        if key == WORKSPACE_KEY:
            if not workspace:
                continue
            key = workspace
        out[key] = place_workspace(value, workspace)
    return out


def merged_config(existing: bytes | None, ours: bytes, workspace: str) -> bytes:
    """The bytes to write: the agent's config (`existing`) merged under `ours`."""
    settings = place_workspace(json.loads(ours), workspace)
    return (json.dumps(merge(parse_agent_config(existing), settings), indent=2) + "\n").encode()
