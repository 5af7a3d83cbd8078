"""Names that become paths: agent and bottle names and bottle slugs.

A name is one plain path component, ASCII, starting with a letter or digit, so it can
never be `.`, `..`, hidden, absolute, or hold a `/` (a name like `../../../tmp/x` once
put a bottle's state and audit log outside BOT_BOTTLE_HOME). The same shape is a valid
Docker object name. Leaf module: the manifest, the state store and the CLI all check it.
"""

from __future__ import annotations

import re

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
SLUG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"  # a name plus `-word-hex`
NAME_RULE = "1-63 of A-Z a-z 0-9 . _ -, starting with a letter or digit"
_NAME = re.compile(NAME_PATTERN)
_SLUG = re.compile(SLUG_PATTERN)

BACKENDS = ("namespace", "docker", "microvm")
"""The built-in backends' ids (each is the module `bot_bottle.backends.<id>`), the one
list the manifest's `backend`, the CLI's `--backend` and the registry all read. `auto`
takes the first that can run the bottle (see `preflight.backend_id_for`)."""


def is_name(text: str) -> bool:
    # fullmatch: `$` alone would let a trailing newline through.
    return isinstance(text, str) and _NAME.fullmatch(text) is not None


def is_slug(text: str) -> bool:
    return isinstance(text, str) and _SLUG.fullmatch(text) is not None
