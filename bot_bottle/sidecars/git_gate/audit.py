"""One audit record per push, in the bottle's shared, hash-chained `audit.jsonl`
(the egress sidecar's `AuditWriter`, which locks across processes)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot_bottle.sidecars.egress.audit import AuditWriter


def write_push_record(path: Path, rec: Mapping[str, Any]) -> None:
    with AuditWriter(path) as w:
        w.write(rec)


def audit_problem(path: Path) -> str:
    """Why the push's record might not be written ("" when it can be): a push is
    forwarded only when it will be on record, as egress forwards requests."""
    try:
        with AuditWriter(path) as w:
            return w.problem()
    except OSError as e:
        return f"the audit log cannot be opened ({e.strerror})"
