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
