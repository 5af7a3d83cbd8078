"""The in-bottle `bot-bottle-ask` program: its arguments, what it prints and exits with,
and its MCP server's JSON-RPC (the endpoint calls are stubbed here; the e2e tests run it
in real bottles against the real endpoint)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from bot_bottle import ask_tool
from bot_bottle.ask_tool import AskError, describe, exit_code, route_body


@pytest.mark.parametrize(
    ("target", "path", "want"),
    [
        ("api.example.com", None, ("api.example.com", 443, "/")),
        ("api.example.com:8443", "/v1/", ("api.example.com", 8443, "/v1/")),
        ("https://api.example.com/v1/data", None, ("api.example.com", 443, "/v1/data")),
        ("https://api.example.com:9443/x", "/y/", ("api.example.com", 9443, "/y/")),
        ("[2001:db8::1]:8443", None, ("2001:db8::1", 8443, "/")),
    ],
)
def test_route_targets(target: str, path: str | None, want: tuple[str, int, str]) -> None:
    body = route_body(target, path, ["get", "GET", "post"], "needed")
    assert (body["host"], body["port"], body["path"]) == want
    assert body["methods"] == ["GET", "POST"] and body["kind"] == "route"


@pytest.mark.parametrize(
    "target", ["http://api.example.com/", "api.example.com:https", "https://h.example:99999/"]
)
def test_bad_route_targets(target: str) -> None:
    with pytest.raises(AskError):
        route_body(target, None, [], "needed")


ROUTE = {"kind": "route", "host": "h.example", "port": 443, "path": "/v1/", "methods": ["GET"]}


def test_answers_and_exit_codes() -> None:
    granted = {"id": "r-1", "status": "granted", "answer": "", "expires": 0, "ask": ROUTE}
    assert describe(granted).startswith("granted: https://h.example/v1/ (GET) is allowed now")
    assert exit_code(granted) == 0
    denied = {**granted, "status": "denied", "answer": "use the mirror"}
    assert describe(denied) == "denied: https://h.example/v1/ (GET): use the mirror"
    assert exit_code(denied) == 1
    pending = {**granted, "status": "pending"}
    assert "bot-bottle-ask wait r-1" in describe(pending) and exit_code(pending) == 2
    q = {"id": "r-2", "status": "granted", "answer": "yes", "ask": {"kind": "question"}}
    assert describe(q) == "granted: yes"


def test_the_command_prints_the_answer(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(ask_tool, "ask", lambda body: sent.append(body) or {"id": "r-9"})
    monkeypatch.setattr(ask_tool, "wait", lambda rid, timeout, progress=None: {
        "id": rid, "status": "denied", "answer": "not today", "ask": ROUTE})  # fmt: skip
    rc = ask_tool.main(["route", "h.example", "/v1/", "-m", "get", "--reason", "why"])
    out, err = capsys.readouterr()
    assert rc == 1 and out == "denied: https://h.example/v1/ (GET): not today\n"
    assert "r-9" in err and sent[0]["methods"] == ["GET"] and sent[0]["reason"] == "why"


def test_an_unreachable_endpoint_is_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(body: dict[str, Any]) -> dict[str, Any]:
        raise AskError("cannot reach the supervise endpoint")

    monkeypatch.setattr(ask_tool, "ask", refuse)
    assert ask_tool.main(["question", "anyone?"]) == 2
    assert "cannot reach" in capsys.readouterr().err


def mcp(*messages: Any) -> list[dict[str, Any]]:
    inp = io.StringIO("".join((m if isinstance(m, str) else json.dumps(m)) + "\n"
                              for m in messages))  # fmt: skip
    out = io.StringIO()
    assert ask_tool.serve_mcp(inp, out) == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_mcp_handshake_and_tool_list() -> None:
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "t", "version": "0"}}}  # fmt: skip
    replies = mcp(init, {"jsonrpc": "2.0", "method": "notifications/initialized"},
                  {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                  {"jsonrpc": "2.0", "id": 3, "method": "ping"})  # fmt: skip
    assert [r["id"] for r in replies] == [1, 2, 3]  # no answer to a notification
    assert replies[0]["result"]["protocolVersion"] == "2025-06-18"
    assert "tools" in replies[0]["result"]["capabilities"]
    names = [t["name"] for t in replies[1]["result"]["tools"]]
    assert names == ["request_route", "ask_operator", "check_request"]
    assert all(t["inputSchema"]["type"] == "object" for t in replies[1]["result"]["tools"])
    assert replies[2]["result"] == {}
    old = {**init, "params": {**init["params"], "protocolVersion": "1999-01-01"}}
    assert mcp(old)[0]["result"]["protocolVersion"] == ask_tool.PROTOCOLS[0]


def test_mcp_bad_messages_get_json_rpc_errors() -> None:
    replies = mcp("{nope", "[1]", {"jsonrpc": "2.0", "id": 4, "method": "sudo"},
                  {"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                   "params": {"name": "rm", "arguments": {}}})  # fmt: skip
    assert [r["error"]["code"] for r in replies] == [-32700, -32600, -32601, -32602]


def test_mcp_tool_call_asks_and_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(ask_tool, "ask", lambda body: sent.append(body) or {"id": "r-7"})
    monkeypatch.setattr(ask_tool, "wait", lambda rid, timeout, progress=None: {
        "id": rid, "status": "granted", "answer": "", "expires": 0, "ask": ROUTE})  # fmt: skip
    call = {"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {
        "name": "request_route", "arguments": {"host": "h.example", "path": "/v1/",
                                               "methods": ["GET"], "reason": "data"}}}  # fmt: skip
    (reply,) = mcp(call)
    assert reply["id"] == 9 and reply["result"]["isError"] is False
    text = reply["result"]["content"][0]["text"]
    assert text.startswith("granted: https://h.example/v1/ (GET)") and "r-7" in text
    assert sent == [{"kind": "route", "reason": "data", "host": "h.example", "path": "/v1/",
                     "methods": ["GET"]}]  # fmt: skip


def test_mcp_tool_errors_are_tool_results(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(body: dict[str, Any]) -> dict[str, Any]:
        raise AskError("the supervise endpoint answered 429: too many requests")

    monkeypatch.setattr(ask_tool, "ask", refuse)
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "ask_operator", "arguments": {"question": "?"}}}  # fmt: skip
    (reply,) = mcp(call)
    assert reply["result"]["isError"] is True and "429" in reply["result"]["content"][0]["text"]


def test_wait_retries_a_dropped_poll_but_not_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    answers: list[Any] = [AskError("connection reset"), {"id": "r-1", "status": "pending"},
                          {"id": "r-1", "status": "granted", "answer": ""}]  # fmt: skip
    polled: list[str] = []

    def call(method: str, url: str, body: Any, timeout: float) -> dict[str, Any]:
        polled.append(url)
        a = answers.pop(0)
        if isinstance(a, AskError):
            raise a
        return dict(a)

    monkeypatch.setattr(ask_tool, "_call", call)
    monkeypatch.setattr(ask_tool.time, "sleep", lambda s: None)
    progress: list[str] = []
    assert ask_tool.wait("r-1", 0, progress.append)["status"] == "granted"
    assert len(polled) == 3 and all("/r-1?wait=" in u for u in polled)
    assert progress and "r-1" in progress[0]
    answers[:] = [AskError("the supervise endpoint answered 404: no request", 404)]
    with pytest.raises(AskError, match="404"):
        ask_tool.wait("r-1", 0)
