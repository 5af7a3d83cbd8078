"""`suggest` and `logs --denied [--all]` on an audit file: what they print and leave out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from bot_bottle.sidecars.egress.audit import AuditWriter


def bb(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot_bottle", *args], capture_output=True,
                          text=True, cwd=cwd, check=False)  # fmt: skip


def _audit(path: Path) -> None:
    with AuditWriter(path, "dev") as w:
        for host, p, rule, expected in [
            ("pypi.org", "/simple/requests/", "route", False),
            ("ab.chatgpt.com", "/otlp/v1/metrics", "route", True),
            ("evil.example", "/x", "canary", False),
        ]:
            rec = {"method": "GET", "host": host, "path": p, "scheme": "https", "port": 443,
                   "decision": "deny", "rule": rule, "status": 403}  # fmt: skip
            w.write(rec | ({"expected": True} if expected else {}))


def test_suggest_and_logs_leave_expected_denials_out_unless_all(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    _audit(log)
    out = bb("suggest", "--file", str(log), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "paste them under bottles.dev.egress.routes" in out.stdout
    assert yaml.safe_load(out.stdout) == [
        {"host": "pypi.org", "path_allowlist": ["/simple/requests"], "methods": ["GET"]}
    ]
    every = json.loads(bb("suggest", "--file", str(log), "--all", "--json", cwd=tmp_path).stdout)
    assert [r["host"] for r in every] == ["ab.chatgpt.com", "pypi.org"]
    shown = bb("logs", "--file", str(log), "--denied", "--json", cwd=tmp_path).stdout
    assert [json.loads(x)["host"] for x in shown.splitlines()] == ["pypi.org", "evil.example"]
    shown = bb("logs", "--file", str(log), "--denied", "--all", "--json", cwd=tmp_path).stdout
    assert len(shown.splitlines()) == 3


def test_suggest_with_nothing_to_suggest_says_so(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    log.write_text("")
    out = bb("suggest", "--file", str(log), cwd=tmp_path)
    assert out.returncode == 0 and "no denials a route would fix" in out.stdout
    missing = bb("suggest", "--file", str(tmp_path / "nope.jsonl"), cwd=tmp_path)
    assert missing.returncode == 2 and "no audit log" in missing.stderr
    assert "Traceback" not in missing.stderr
