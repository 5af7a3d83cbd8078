"""One table of rules and hints (`policy.rules`): every rule the code can deny by has
a hint, and the 403 body says it (main told a path denial to "report this as a
bot-bottle bug")."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest
from egress_unit_env import Env
from mitmproxy.test import tflow, tutils

from bot_bottle.policy.decision import Decision
from bot_bottle.policy.rules import BUG, RULES
from bot_bottle.sidecars.egress.gate import denial_body

PACKAGE = Path(__file__).resolve().parents[3] / "bot_bottle"
FAIL_CLOSED = {"policy-error", "internal"}


def emitted_rules() -> set[str]:
    """Every rule id written as a literal where a Decision is made: `Decision.denied(id`,
    `Decision.allowed(id`, `Decision(allow, id` and `@fail_closed(id)`."""
    found: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            index = {"denied": 0, "fail_closed": 0, "Decision": 1}.get(name)
            if index is None or len(node.args) <= index:
                continue
            arg = node.args[index]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
    return found


def test_the_scan_finds_rules() -> None:
    found = emitted_rules()
    assert {"route", "path-rejected", "policy-error", "dlp", "git-protected-force"} <= found


def test_every_emitted_rule_has_a_hint() -> None:
    assert sorted(emitted_rules() - set(RULES)) == []
    for rule in RULES.values():
        assert rule.hint and rule.guards, rule
        assert (rule.hint == BUG) == (rule.id in FAIL_CLOSED), rule


@pytest.mark.parametrize("rule", sorted(RULES))
def test_the_403_body_says_the_rules_hint(rule: str) -> None:
    body = denial_body("GET", "h.test", "/p", Decision.denied(rule, "why"), bottle="dev")
    assert body.endswith(
        f"\nto allow: {RULES[rule].hint.replace('bottles.<name>.', 'bottles.dev.')}\n"
    )


def test_a_decisions_own_hint_wins() -> None:
    body = denial_body("GET", "h.test", "/p", Decision.denied("path", "why", "add /v2"))
    assert body.endswith("\nto allow: add /v2\n")


def test_a_rejected_path_is_not_called_a_bug(env: Env) -> None:
    f = tflow.tflow()
    f.request = tutils.treq(host="api.example.test", port=443, path=b"/v1/%2e%2e/admin",
                            method=b"GET", scheme=b"https", authority=b"")  # fmt: skip
    f.request.headers.clear()
    f.request.headers["host"] = "api.example.test"
    f.client_conn.tls = True
    f.client_conn.sni = "api.example.test"
    c = tflow.tflow()
    c.client_conn = f.client_conn
    c.request = tutils.treq(method=b"CONNECT", host="api.example.test", port=443, path=b"",
                            scheme=b"", authority=b"")  # fmt: skip
    env.addon.http_connect(c)
    env.addon.requestheaders(f)
    asyncio.run(env.addon.request(f))
    assert f.response is not None and f.response.status_code == 403
    assert f.response.headers["x-bot-bottle-denied"] == "path-rejected"
    text = f.response.get_text()
    assert text.endswith(f"\nto allow: {RULES['path-rejected'].hint}\n"), text
    assert BUG not in text
