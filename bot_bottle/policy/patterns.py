"""Operator DLP patterns: regexes compiled by Hyperscan, never by a backtracking engine.

An operator pattern runs over agent-controlled bytes. Python's `re` backtracks, so a
pattern like `(a+)+$` lets the agent stall the sidecar with a short request; Hyperscan
compiles to automata and scans in linear time whatever the pattern. What it cannot
compile (back-references, lookaround, a pattern that matches the empty string) is
refused where the pattern is written, with the reason, rather than at launch.
"""

from __future__ import annotations

# Hyperscan is imported where it is used: a launch whose plan comes from the plan cache
# compiles no pattern, and need not pay for the import (the sidecar does).


def flags() -> int:
    """The flags every operator pattern is compiled with, at validation and in the scanner."""
    import hyperscan

    return int(hyperscan.HS_FLAG_SOM_LEFTMOST)


def pattern_error(pattern: str) -> str | None:
    """Why Hyperscan cannot compile `pattern` for DLP, or None if it can."""
    import hyperscan

    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    try:
        db.compile(expressions=[pattern.encode("utf-8")], ids=[0], elements=1, flags=[flags()])
    except hyperscan.error as e:
        reason = str(e).rstrip(".")
        if "empty buffer" in reason:
            reason = "it matches the empty string, which names no secret"
        return f"cannot be compiled for linear-time scanning: {reason}"
    return None
