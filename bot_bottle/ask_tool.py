#!/usr/bin/env python3
"""`bot-bottle-ask`: the agent's side of supervise, a program that runs *inside* a bottle.

Provisioned into bottles with `supervise: true` (see `plan/ask_tool.py`) and run by the
bottle's own python3, so it imports nothing but the standard library. It asks the
operator through the supervise endpoint the bottle's egress answers (through the proxy
variables every bottle has), waits for the answer and reports it:

    bot-bottle-ask route HOST[:PORT] [PATH] [--method M ...] --reason TEXT
    bot-bottle-ask question TEXT
    bot-bottle-ask wait ID
    bot-bottle-ask mcp            (a stdio MCP server with the same abilities as tools)

Exit status: 0 granted (or answered), 1 denied (the operator's reason is printed),
2 an error, or no answer before `--timeout`. Progress goes to stderr, the answer to
stdout. It holds no privilege: the egress decides everything, the operator answers.
Longer than 300 lines: the command line and the MCP server are one file on purpose, so
provisioning puts a single self-contained program in the bottle.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

ENDPOINT = "http://supervise.bot-bottle.internal/v1/ask"
NAME = "bot-bottle-ask"
VERSION = "1"
POLL_WAIT = 50  # seconds per poll; the endpoint holds a poll at most 60 s
DEFAULT_TIMEOUT = 600.0
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")
GRANTED, DENIED, FAILED = 0, 1, 2


class AskError(Exception):
    """The endpoint refused (`status`, its HTTP status), or could not be reached
    (`status` 0); the message says why."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def _call(method: str, url: str, body: dict[str, Any] | None, timeout: float) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"content-type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            out: dict[str, Any] = json.loads(r.read())
            return out
    except urllib.error.HTTPError as e:
        raw = e.read().decode("utf-8", "replace")
        try:
            detail = json.loads(raw).get("error", raw)
        except (ValueError, AttributeError):
            detail = raw.strip()  # the egress's own 403 (DLP, or supervise is off) is text
        raise AskError(f"the supervise endpoint answered {e.code}: {detail}", e.code) from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise AskError(f"cannot reach the supervise endpoint ({reason}); is this a bottle "
                       "with `supervise: true`?") from None  # fmt: skip


def ask(body: dict[str, Any]) -> dict[str, Any]:
    """Post one ask; the endpoint's {"id", "status", "poll"}."""
    return _call("POST", ENDPOINT, body, 30)


def wait(rid: str, timeout: float, progress: Any = None) -> dict[str, Any]:
    """Poll until the request is answered or `timeout` seconds pass (0: no limit); the
    last view ({"id", "status", "answer", ...}). A dropped poll is retried."""
    start = time.monotonic()
    view: dict[str, Any] = {"id": rid, "status": "pending", "answer": ""}
    failures = 0
    while True:
        left = POLL_WAIT if timeout <= 0 else timeout - (time.monotonic() - start)
        if left <= 0:
            return view
        chunk = max(1, int(min(POLL_WAIT, left)))
        try:
            view = _call("GET", f"{ENDPOINT}/{rid}?wait={chunk}", None, chunk + 30)
            failures = 0
        except AskError as e:
            failures += 1
            if failures >= 5 or 400 <= e.status < 500:  # a refusal will not change
                raise
            time.sleep(1)
            continue
        if view.get("status") != "pending":
            return view
        if progress is not None:
            progress(f"{NAME}: still waiting for the operator on {rid} "
                     f"({int(time.monotonic() - start)}s)")  # fmt: skip


def route_body(target: str, path: str | None, methods: list[str], reason: str) -> dict[str, Any]:
    """The ask for a route, from HOST, HOST:PORT or an https URL (path taken from it)."""
    url_path = ""
    if "://" in target:
        parts = urlsplit(target)
        if parts.scheme != "https":
            raise AskError("a granted route is always https; give HOST[:PORT] or https://...")
        try:
            port = parts.port or 443
        except ValueError:
            raise AskError(f"{target!r}: the port must be a number 1-65535") from None
        host, url_path = parts.hostname or "", parts.path
    else:
        if target.startswith("["):  # [v6]:port or [v6]
            host, _, rest = target[1:].partition("]")
            port_text = rest.removeprefix(":")
        elif target.count(":") == 1:
            host, _, port_text = target.partition(":")
        else:
            host, port_text = target, ""
        if port_text and not port_text.isdigit():
            raise AskError(f"{target!r}: the port must be a number")
        port = int(port_text) if port_text else 443
    body: dict[str, Any] = {"kind": "route", "host": host, "port": port,
                            "path": path or url_path or "/", "reason": reason}  # fmt: skip
    if methods:
        body["methods"] = sorted({m.upper() for m in methods})
    return body


def describe(view: dict[str, Any]) -> str:
    """One line for the agent: what was answered."""
    a = view.get("ask") or {}
    status, answer = view.get("status", "?"), view.get("answer", "")
    if status == "pending":
        return f"no answer yet to {view.get('id')}; wait again with `{NAME} wait {view.get('id')}`"
    if a.get("kind") == "question":
        return f"{status}: {answer}" if answer else status
    port = "" if a.get("port", 443) == 443 else f":{a.get('port')}"
    what = f"https://{a.get('host')}{port}{a.get('path', '/')}"
    methods = ",".join(a.get("methods") or []) or "any method"
    if status == "granted":
        until = " until the bottle ends"
        if view.get("expires"):
            until = " until " + time.strftime("%H:%M:%S", time.localtime(view["expires"]))
        return f"granted: {what} ({methods}) is allowed now{until}"
    return f"denied: {what} ({methods})" + (f": {answer}" if answer else "")


def exit_code(view: dict[str, Any]) -> int:
    return {"granted": GRANTED, "denied": DENIED}.get(str(view.get("status")), FAILED)


# ------------------------------------------------------------------ command line


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=NAME, description="Ask the operator of this bottle "
                                "for a route or a decision, and wait for the answer.")  # fmt: skip
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("route", help="ask for access to an https host (and path prefix)")
    r.add_argument("target", metavar="HOST[:PORT]", help="or an https:// URL")
    r.add_argument("path", nargs="?", help="path prefix (default /)")
    r.add_argument("--method", "-m", action="append", default=[], choices=METHODS,
                   type=str.upper, help="an HTTP method to allow (repeat; default any)")  # fmt: skip
    r.add_argument("--reason", "-r", required=True, help="why the task needs it")
    q = sub.add_parser("question", help="ask the operator a free-text question")
    q.add_argument("text")
    q.add_argument("--reason", "-r", default="")
    w = sub.add_parser("wait", help="wait for the answer to an earlier request")
    w.add_argument("id")
    for s in (r, q, w):
        s.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                       help=f"seconds to wait for the answer (0: no limit; default "
                       f"{DEFAULT_TIMEOUT:.0f})")  # fmt: skip
        s.add_argument("--no-wait", action="store_true", help="print the id and return")
        s.add_argument("--json", action="store_true", help="print the answer as JSON")
    sub.add_parser("mcp", help="serve the same as MCP tools on stdin/stdout")
    return p


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.cmd == "mcp":
        return serve_mcp(sys.stdin, sys.stdout)
    try:
        if args.cmd == "wait":
            rid = args.id
        else:
            body = (route_body(args.target, args.path, args.method, args.reason)
                    if args.cmd == "route" else
                    {"kind": "question", "question": args.text, "reason": args.reason})  # fmt: skip
            rid = str(ask(body)["id"])
            _say(f"{NAME}: asked the operator ({rid}); they answer with "
                 f"`bot-bottle grant {rid}` or `bot-bottle deny {rid}`")  # fmt: skip
        if args.no_wait:
            print(rid)
            return GRANTED
        view = wait(rid, args.timeout, _say)
    except AskError as e:
        _say(f"{NAME}: {e}")
        return FAILED
    print(json.dumps(view, sort_keys=True) if args.json else describe(view), flush=True)
    if view.get("status") == "pending":
        _say(f"{NAME}: no answer within {args.timeout:.0f}s; the request stays open")
    return exit_code(view)


# ------------------------------------------------------------------ MCP server

PROTOCOLS = ("2025-06-18", "2025-03-26", "2024-11-05")
WAIT_FIELD = {"type": "integer", "minimum": 1, "maximum": 3600,
              "description": "seconds to wait for the answer (default 600)"}  # fmt: skip
TOOLS: list[dict[str, Any]] = [
    {"name": "request_route",
     "description": "Ask the operator to allow an https destination this bottle's egress "
                    "refuses (a 403 naming the `route` rule). Blocks until the operator "
                    "grants or denies it; once granted, retry the request. Say why the "
                    "task needs it; ask for the narrowest path prefix and methods.",
     "inputSchema": {"type": "object", "required": ["host", "reason"], "properties": {
         "host": {"type": "string", "description": "host name, e.g. api.example.com"},
         "port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 443},
         "path": {"type": "string", "description": "path prefix, e.g. /v1/ (default /)"},
         "methods": {"type": "array", "items": {"type": "string", "enum": list(METHODS)},
                     "description": "methods to allow (default any)"},
         "reason": {"type": "string", "description": "why the task needs it"},
         "wait_seconds": WAIT_FIELD}}},
    {"name": "ask_operator",
     "description": "Ask the human operator of this bottle a question (a decision, a "
                    "missing detail) and wait for the reply.",
     "inputSchema": {"type": "object", "required": ["question"], "properties": {
         "question": {"type": "string"}, "wait_seconds": WAIT_FIELD}}},
    {"name": "check_request",
     "description": "Wait again for the answer to an earlier request, by its id.",
     "inputSchema": {"type": "object", "required": ["id"], "properties": {
         "id": {"type": "string", "description": "r-..."}, "wait_seconds": WAIT_FIELD}}},
]  # fmt: skip
INSTRUCTIONS = ("This bottle's network allows only the routes its operator declared. "
                "When a request is refused (HTTP 403 from the egress) and the task needs "
                "it, call request_route; ask_operator asks a human a question.")  # fmt: skip


def call_tool(name: str, args: dict[str, Any]) -> tuple[str, bool]:
    """Run one tool; (text for the agent, whether it is an error)."""
    timeout = float(args.get("wait_seconds") or DEFAULT_TIMEOUT)
    try:
        if name == "check_request":
            rid = str(args.get("id", ""))
        else:
            if name == "request_route":
                body: dict[str, Any] = {"kind": "route", "reason": args.get("reason", "")}
                body.update({k: args[k] for k in ("host", "port", "path", "methods")
                             if k in args})  # fmt: skip
            else:
                body = {"kind": "question", "question": args.get("question", "")}
            rid = str(ask(body)["id"])
        view = wait(rid, timeout)
    except AskError as e:
        return str(e), True
    text = describe(view)
    if view.get("status") == "pending":
        text = f"the operator has not answered {rid} yet; call check_request with id {rid}"
    return f"{text} (request {rid})", False


def _reply(msg: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON-RPC answer to one message, or None for a notification."""
    mid, method = msg.get("id"), msg.get("method")
    raw = msg.get("params")
    params: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if mid is None:
        return None
    if method == "initialize":
        asked = params.get("protocolVersion")
        result: dict[str, Any] = {
            "protocolVersion": asked if asked in PROTOCOLS else PROTOCOLS[0],
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": {"name": NAME, "version": VERSION},
            "instructions": INSTRUCTIONS,
        }
    elif method == "ping":
        result = {}
    elif method == "tools/list":
        result = {"tools": TOOLS}
    elif method == "tools/call" and params.get("name") in {t["name"] for t in TOOLS}:
        given = params.get("arguments")
        text, failed = call_tool(str(params["name"]), given if isinstance(given, dict) else {})
        result = {"content": [{"type": "text", "text": text}], "isError": failed}
    elif method == "tools/call":
        return _error(mid, -32602, f"unknown tool: {params.get('name')!r}")
    else:
        return _error(mid, -32601, f"method not found: {method!r}")
    return {"jsonrpc": "2.0", "id": mid, "result": result}


def _error(mid: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": mid, "error": {"code": code, "message": message}}


def serve_mcp(inp: Any, out: Any) -> int:
    """MCP over stdio: one JSON-RPC message per line. A tool call waits for a human, so
    each runs on its own thread and the loop keeps answering (pings, other calls)."""
    lock = threading.Lock()
    calls: list[threading.Thread] = []

    def send(reply: dict[str, Any] | None) -> None:
        if reply is not None:
            with lock:
                out.write(json.dumps(reply) + "\n")
                out.flush()

    def handle(msg: dict[str, Any]) -> None:
        try:
            send(_reply(msg))
        except Exception as e:  # a bug here must answer, not hang the agent's call
            send(_error(msg.get("id"), -32603, f"internal error: {e}"))

    for line in inp:
        if not line.strip():
            continue
        try:
            msg = json.loads(line)
        except ValueError:
            send(_error(None, -32700, "parse error"))
            continue
        if not isinstance(msg, dict):
            send(_error(None, -32600, "invalid request"))
        elif msg.get("method") == "tools/call":
            calls.append(threading.Thread(target=handle, args=(msg,), daemon=True))
            calls[-1].start()
        else:
            handle(msg)
    for call in calls:  # input closed: answer what was asked, then exit
        call.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
