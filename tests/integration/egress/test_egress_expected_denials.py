"""A provider's expected denials (its CLI's own background calls) are denied like any
other request, marked `expected` in the audit log, and left out of `logs --denied`
unless `--all`. Only missing-route denials are marked: a secret sent to such a host
is an exfiltration attempt and stays in the list."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

import pytest
from egress_harness import CANARY, DEFAULT_ROUTES, Egress, curl, serve_argv

pytestmark = pytest.mark.integration


def _denied(eg: Egress, *flags: str) -> list[tuple[str, str, str]]:
    out = subprocess.run(
        serve_argv(["logs", "--file", str(eg.audit_path), "--denied", "--json", *flags]),
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    recs = [json.loads(x) for x in out.stdout.splitlines()]
    return sorted((r["host"], r.get("path", ""), r["rule"]) for r in recs)


def test_expected_denials_are_marked_and_hidden(make_egress: Callable[..., Egress]) -> None:
    eg = make_egress(
        DEFAULT_ROUTES,
        doc_extra={"expected_denials": ["ab.example.test", "gh.example.test/openai/codex"]},
    )
    for url in (
        "https://ab.example.test/otlp/v1/metrics",
        "https://gh.example.test/openai/codex/main/tip.toml",
        "https://gh.example.test/someone/else",
        f"https://ab.example.test/x?k={CANARY}",
    ):
        code, body, _ = curl(eg, url)
        assert code == 403 and "bot-bottle egress denied" in body, body
    eg.wait_audit(lambda r: r.get("rule") == "canary")
    every = _denied(eg, "--all")
    assert every == [
        ("ab.example.test", "/otlp/v1/metrics", "route"),
        ("ab.example.test", "/x", "canary"),
        ("gh.example.test", "/openai/codex/main/tip.toml", "route"),
        ("gh.example.test", "/someone/else", "route"),
    ], every
    assert _denied(eg) == [
        ("ab.example.test", "/x", "canary"),
        ("gh.example.test", "/someone/else", "route"),
    ]
