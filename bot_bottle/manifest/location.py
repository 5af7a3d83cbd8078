"""Which manifest a command reads. Kept apart from the loader so that finding the
manifest does not import PyYAML and pydantic."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from bot_bottle.errors import ManifestError

DEFAULT_NAME = "bot-bottle.yaml"
ENV_VAR = "BOT_BOTTLE_MANIFEST"


def manifest_path(explicit: str | None = None, env: Mapping[str, str] | None = None) -> Path:
    """`-f FILE`, else `$BOT_BOTTLE_MANIFEST`, else `./bot-bottle.yaml` (not searched,
    not checked: `find_manifest` is what commands that read one use)."""
    env = os.environ if env is None else env
    return Path(explicit or env.get(ENV_VAR) or DEFAULT_NAME)


def find_manifest(
    explicit: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Path:
    """The manifest a command reads: `-f FILE`, else `$BOT_BOTTLE_MANIFEST`, else the
    nearest `bot-bottle.yaml` in the current directory or above it, as git finds its
    repository. Raises `ManifestError` with the fix that fits how it was looked for."""
    env = os.environ if env is None else env
    if explicit:
        return _given(Path(explicit), "check the path given to -f")
    if env.get(ENV_VAR):
        return _given(Path(env[ENV_VAR]), f"check ${ENV_VAR}, or unset it to use ./{DEFAULT_NAME}")
    start = Path(os.path.abspath(cwd or Path.cwd()))
    found, stop = search_upward(start, env.get("HOME", ""))
    if found is None:
        where = str(start) if stop == start else f"{start} or above it (up to {stop})"
        raise ManifestError(
            f"no {DEFAULT_NAME} in {where}",
            fix="run `bot-bottle init` to write one here, or pass -f FILE",
        )
    return found


def _given(path: Path, fix: str) -> Path:
    if not os.path.lexists(path):
        raise ManifestError(f"no manifest at {path}", fix=fix)
    return path


def search_upward(start: Path, home: str = "") -> tuple[Path | None, Path]:
    """The nearest `bot-bottle.yaml` from `start` upward, and the last directory looked
    in. The search stops at the filesystem root, at a mount boundary (a manifest on
    another filesystem belongs to someone else's tree), and at `home` when `start` is
    under it (a manifest above $HOME is not this user's project)."""
    home_dir = Path(os.path.abspath(home)) if home else None
    here = start
    try:
        device = os.stat(here).st_dev
    except OSError:
        return None, start
    while True:
        candidate = here / DEFAULT_NAME
        if candidate.is_file():
            return candidate, here
        parent = here.parent
        if parent == here or here == home_dir:
            return None, here
        try:
            if os.stat(parent).st_dev != device:
                return None, here
        except OSError:
            return None, here
        here = parent
