"""Which manifest a command reads. Kept apart from the loader so that finding the
manifest does not import PyYAML and pydantic."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

DEFAULT_NAME = "bot-bottle.yaml"
ENV_VAR = "BOT_BOTTLE_MANIFEST"


def manifest_path(explicit: str | None = None, env: Mapping[str, str] | None = None) -> Path:
    """`-f FILE`, else `$BOT_BOTTLE_MANIFEST`, else `./bot-bottle.yaml`."""
    env = os.environ if env is None else env
    return Path(explicit or env.get(ENV_VAR) or DEFAULT_NAME)
