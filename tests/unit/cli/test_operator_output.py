"""What an agent wrote reaches the operator's terminal defused: `requests` and `logs`
never pass an escape sequence (which could clear the screen, set the clipboard or
retitle the window) or a newline (which could forge a line of output) through."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot_bottle.cli.egress_cmds import logs
from bot_bottle.cli.supervise_cmds import requests
from bot_bottle.policy.supervise import Ask
from bot_bottle.state.requests import RequestDir
from bot_bottle.state.store import StateStore

HOSTILE = "fine\x1b]52;c;ZXZpbA==\x07\x1b[2J\nr-00000000  other  granted"


def test_requests_defuses_reasons(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_BOTTLE_HOME", str(tmp_path))
    store = StateStore()
    meta = store.create(agent="a", bottle="b", backend="namespace", manifest_path="/m.yaml",
                        manifest_digest="d")  # fmt: skip
    asks = RequestDir(store.dir(meta.slug) / "sidecars" / "egress" / "requests", "b")
    asks.create(Ask("question", reason=HOSTILE, question=HOSTILE))
    out = CliRunner().invoke(requests, []).output
    assert "\x1b" not in out and "\x07" not in out, repr(out)
    assert not any(line.startswith("r-00000000") for line in out.splitlines()), out


def test_logs_defuses_audit_text(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    rec = {"ts": "2026-12-01T00:00:00.000+00:00", "kind": "request", "decision": "deny",
           "rule": "supervise", "method": "POST", "host": "supervise.bot-bottle.internal",
           "path": "/v1/ask", "reason": f"asked r-1: question: {HOSTILE}"}  # fmt: skip
    audit.write_text(json.dumps(rec) + "\n")
    out = CliRunner().invoke(logs, ["--file", str(audit)]).output
    assert "\x1b" not in out and "\x07" not in out, repr(out)
