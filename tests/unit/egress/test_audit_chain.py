"""The audit log's hash chain: appends link up, across writers, and tampering shows."""

from __future__ import annotations

import json
from pathlib import Path

from bot_bottle.sidecars.egress.audit import GENESIS, AuditWriter, read_audit, verify_chain


def test_chain_links_and_verifies(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    with AuditWriter(p, "b") as w:
        for i in range(5):
            w.write({"method": "GET", "path": f"/{i}", "decision": "allow"})
    recs = list(read_audit(p))
    assert recs[0]["prev"] == GENESIS and len(recs) == 5
    assert verify_chain(p) == (True, 0)


def test_two_writers_share_one_chain(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    a, b = AuditWriter(p, "x"), AuditWriter(p, "x")
    for i in range(4):
        (a if i % 2 else b).write({"n": i})
    b.write({"kind": "git-push", "refs": ["refs/heads/main"], "verdict": "allow"})
    a.close()
    b.close()
    assert verify_chain(p) == (True, 0)


def test_tampering_edit_delete_and_garbage(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    with AuditWriter(p) as w:
        for i in range(4):
            w.write({"n": i, "decision": "deny"})
    lines = p.read_text().splitlines()
    edited = json.loads(lines[1])
    edited["decision"] = "allow"
    p.write_text("\n".join([lines[0], json.dumps(edited), *lines[2:]]) + "\n")
    assert verify_chain(p) == (False, 3)
    p.write_text("\n".join([lines[0], *lines[2:]]) + "\n")
    assert verify_chain(p) == (False, 2)
    p.write_text("\n".join([*lines, "not json"]) + "\n")
    assert verify_chain(p) == (False, 5)


def test_reopening_continues_the_chain(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    with AuditWriter(p) as w:
        w.write({"n": 1})
    with AuditWriter(p) as w:
        w.write({"n": 2})
    assert verify_chain(p) == (True, 0)
