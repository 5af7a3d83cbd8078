"""Glob patterns for ref names and repository paths, where `/` is a boundary.

`*` matches within one path component, `**` across components, `?` one character
other than `/`. `fnmatch` is not used because its `*` crosses `/`, so
`refs/heads/agent/*` would also allow `refs/heads/agent/x/../../main`-like names.
"""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=512)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """The anchored regex for `pattern`; raises `ValueError` on an empty pattern."""
    if not pattern:
        raise ValueError("empty glob pattern")
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def glob_match(pattern: str, name: str) -> bool:
    """True when `name` matches `pattern` in full."""
    return compile_glob(pattern).match(name) is not None
