"""The 403 body's "to ask" line asks for exactly what was denied, as valid JSON that
the endpoint accepts."""

from __future__ import annotations

import json

from bot_bottle.policy.supervise import ask_hint, parse_ask


def _body(line: str) -> dict[str, object]:
    start = line.index("{")
    out: dict[str, object] = json.loads(line[start : line.index("} ") + 1])
    return out


def test_the_hint_is_a_request_the_endpoint_accepts() -> None:
    line = ask_hint("GET", "api.example.test", "/v1/data", 8443)
    body = _body(line)
    assert body == {"kind": "route", "host": "api.example.test", "port": 8443,
                    "path": "/v1/data", "methods": ["GET"],
                    "reason": "<why the task needs it>"}  # fmt: skip
    ask = parse_ask(json.dumps(body).encode())
    assert (ask.host, ask.port, ask.path) == ("api.example.test", 8443, "/v1/data")
    assert ask.methods == ("GET",)
    assert "bot-bottle-ask" in line and "/v1/ask/ID?wait=60" in line


def test_default_port_and_odd_methods_are_left_out() -> None:
    body = _body(ask_hint("BREW", "x.test", ""))
    assert "port" not in body and body["methods"] == [] and body["path"] == "/"
