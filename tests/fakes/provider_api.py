"""Fake provider APIs on loopback, over TLS with a throwaway trustme CA.

One server answers as `api.anthropic.com` (Messages API, SSE), `api.openai.com`
(Responses API, SSE) and `chatgpt.com` (the ChatGPT backend Codex uses in chatgpt
mode). It records every request (method, path, headers, body) so tests can assert
what the egress forwarded, e.g. the injected bearer token.

It listens on port 443 of a loopback address of the caller's choice (the agent
CLIs dial :443; the manifest's `egress.hosts` maps their names to this address).
"""

from __future__ import annotations

import base64
import gzip
import json
import ssl
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme
import zstandard

HOSTS = ("api.anthropic.com", "api.openai.com", "chatgpt.com", "auth.openai.com")
CLAUDE_REPLY = "pong-from-fake-anthropic"
CODEX_REPLY = "pong-from-fake-openai"


@dataclass
class Recorded:
    method: str
    host: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeProviderAPI:
    address: str
    port: int
    ca_path: Path
    requests: list[Recorded] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    # A test's script for the Messages API: given a request body, the content blocks
    # of the answer, or None for the default reply (e.g. for Claude's side requests).
    claude_turn: Callable[[dict[str, Any]], list[dict[str, Any]] | None] | None = None
    # The same for the Responses API: the function calls to answer with, or None.
    codex_turn: Callable[[dict[str, Any]], list[dict[str, Any]] | None] | None = None

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def egress_yaml(self, *hosts: str) -> str:
        """A manifest's `egress:` value (YAML flow style) that sends `hosts` to this fake
        and trusts its CA; the SSRF allowlist admits its loopback address, which egress
        would otherwise refuse to dial."""
        mapped = ", ".join(f"{h}: {self.address}" for h in hosts)
        return (
            f"{{hosts: {{{mapped}}}, upstream_ca: {self.ca_path}, "
            f"ssrf_ip_allowlist: [{self.address}/32]}}"
        )


def _sse(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    return b"".join(
        f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events
    )


def anthropic_stream(model: str, blocks: list[dict[str, Any]] | None = None) -> bytes:
    """A streamed assistant message: `blocks` (text, or `tool_use` with `id`, `name`
    and `input`), by default the one text CLAUDE_REPLY. With a tool_use the message
    stops for the tool, and Claude Code answers with its tool_result."""
    blocks = blocks or [{"type": "text", "text": CLAUDE_REPLY}]
    msg: dict[str, Any] = {
        "id": "msg_fake1", "type": "message", "role": "assistant", "model": model,
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 1}}  # fmt: skip
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": msg})
    ]
    for i, b in enumerate(blocks):
        if b["type"] == "tool_use":
            start = {"type": "tool_use", "id": b["id"], "name": b["name"], "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(b["input"])}
        else:
            start, delta = {"type": "text", "text": ""}, {"type": "text_delta", "text": b["text"]}
        events += [
            ("content_block_start", {"type": "content_block_start", "index": i,
                                     "content_block": start}),
            ("ping", {"type": "ping"}),
            ("content_block_delta", {"type": "content_block_delta", "index": i, "delta": delta}),
            ("content_block_stop", {"type": "content_block_stop", "index": i}),
        ]  # fmt: skip
    stop = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
    return _sse([*events,
        ("message_delta", {"type": "message_delta",
                           "delta": {"stop_reason": stop, "stop_sequence": None},
                           "usage": {"output_tokens": 4}}),
        ("message_stop", {"type": "message_stop"}),
    ])  # fmt: skip


def anthropic_message(model: str) -> dict[str, Any]:
    return {"id": "msg_fake2", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": CLAUDE_REPLY}], "stop_reason": "end_turn",
            "stop_sequence": None, "usage": {"input_tokens": 5, "output_tokens": 4}}  # fmt: skip


def responses_stream(model: str, calls: list[dict[str, Any]] | None = None) -> bytes:
    """A streamed Responses API answer: the text CODEX_REPLY, or with `calls` (each
    `{"name", "arguments"}` for a function call, or a whole item with its `type`, e.g.
    a `custom_tool_call`) tool calls, which Codex runs and answers with `*_output`
    items in its next request."""
    rid = f"resp_{uuid.uuid4().hex[:12]}"
    if calls:
        items = [{"type": "function_call", "id": f"fc_{i}", "call_id": f"call_{i}",
                  "name": c["name"], "arguments": json.dumps(c["arguments"]),
                  "status": "completed"} if "type" not in c else
                 {"id": f"ctc_{i}", "call_id": f"call_{i}", "status": "completed", **c}
                 for i, c in enumerate(calls)]  # fmt: skip
        resp = {"id": rid, "object": "response", "model": model, "status": "in_progress",
                "output": []}  # fmt: skip
        events: list[tuple[str, dict[str, Any]]] = [
            ("response.created", {"type": "response.created", "response": resp})
        ]
        for i, it in enumerate(items):
            events += [("response.output_item.added", {"type": "response.output_item.added",
                                                       "output_index": i, "item": it}),
                       ("response.output_item.done", {"type": "response.output_item.done",
                                                      "output_index": i, "item": it})]  # fmt: skip
        usage = {"input_tokens": 5, "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": 4, "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": 9}  # fmt: skip
        done = {**resp, "status": "completed", "output": items, "usage": usage}
        return _sse(
            [*events, ("response.completed", {"type": "response.completed", "response": done})]
        )
    item = {
        "type": "message",
        "id": "msg_fake3",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": CODEX_REPLY, "annotations": []}],
    }
    usage = {"input_tokens": 5, "input_tokens_details": {"cached_tokens": 0},
             "output_tokens": 4, "output_tokens_details": {"reasoning_tokens": 0},
             "total_tokens": 9}  # fmt: skip
    resp = {"id": rid, "object": "response", "model": model, "status": "in_progress",
            "output": []}  # fmt: skip
    return _sse([
        ("response.created", {"type": "response.created", "response": resp}),
        ("response.output_item.added", {"type": "response.output_item.added",
                                        "output_index": 0, "item": {**item, "content": []}}),
        ("response.output_text.delta", {"type": "response.output_text.delta",
                                        "item_id": "msg_fake3", "output_index": 0,
                                        "content_index": 0, "delta": CODEX_REPLY}),
        ("response.output_item.done", {"type": "response.output_item.done",
                                       "output_index": 0, "item": item}),
        ("response.completed", {"type": "response.completed",
                                "response": {**resp, "status": "completed", "output": [item],
                                             "usage": usage}}),
    ])  # fmt: skip


def codex_models() -> dict[str, Any]:
    # No catalog: Codex keeps its bundled default model.
    return {"models": []}


# What ChatGPT mode fetches besides routing discovery, answered as an account with
# no plugins, no recommendations and default settings.
CHATGPT_GET: dict[str, Any] = {
    "/backend-api/codex/models": codex_models(),
    "/backend-api/wham/settings/user": {"commit_attribution_enabled": False},
    "/backend-api/ps/plugins/installed": {"plugins": [], "pagination": {"next_page_token": None}},
    "/backend-api/ps/plugins/list": {"plugins": [], "pagination": {"next_page_token": None}},
    "/backend-api/ps/plugins/suggested/codex": {"enabled": False, "plugins": []},
    "/backend-api/plugins/featured": [],
}

MCP_RESULTS: dict[str, Any] = {
    "initialize": {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
                   "serverInfo": {"name": "fake-codex-apps", "version": "0"}},
    "tools/list": {"tools": []},
    "resources/list": {"resources": []},
    "resources/templates/list": {"resourceTemplates": []},
}  # fmt: skip


def accounts_check(authorization: str) -> dict[str, Any] | None:
    """Workspace routing discovery (`GET /backend-api/wham/accounts/check`): the
    workspaces of the bearer token's account, or None (401) without one. Codex 0.169
    takes the entry whose `id` is its selected account and requires
    `workspace_backend_origin` (an https origin, or "NO_CONSTRAINT") and
    `account_routing_override` ("NO_CONSTRAINT", "us" or "us_cr"); without them it
    fails with "workspace routing discovery missing backend origin"."""
    token = authorization.removeprefix("Bearer ")
    parts = token.split(".")
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        aid = claims["https://api.openai.com/auth"]["chatgpt_account_id"]
    except (IndexError, ValueError, KeyError, TypeError):
        return None
    entry = {"id": aid, "name": "fake", "structure": "personal", "plan_type": "plus",
             "workspace_backend_origin": "https://chatgpt.com",
             "account_routing_override": "NO_CONSTRAINT"}  # fmt: skip
    return {"accounts": [entry], "account_ordering": [aid], "default_account_id": aid}


def _decode(body: bytes, encoding: str | None) -> bytes:
    """The request body as sent before compression (Codex 0.169 zstd-compresses the
    Responses request body in ChatGPT mode)."""
    enc = (encoding or "").strip().lower()
    if enc == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(body)
    if enc == "gzip":
        return gzip.decompress(body)
    return body


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    api: FakeProviderAPI

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _record(self) -> Recorded:
        n = int(self.headers.get("content-length") or 0)
        body = _decode(self.rfile.read(n) if n else b"", self.headers.get("content-encoding"))
        rec = Recorded(self.command, self.headers.get("host", ""), self.path,
                       {k.lower(): v for k, v in self.headers.items()}, body)  # fmt: skip
        self.api.requests.append(rec)
        return rec

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, obj: Any, status: int = 200) -> None:
        self._send(status, json.dumps(obj).encode())

    def do_GET(self) -> None:
        rec = self._record()
        path = rec.path.split("?")[0]
        if path == "/backend-api/codex/responses" and rec.headers.get("upgrade"):
            # No WebSocket transport here: 426 makes Codex fall back to HTTPS + SSE.
            return self._json({"error": {"type": "upgrade_required",
                                         "message": "use POST with SSE"}}, 426)  # fmt: skip
        answer = CHATGPT_GET.get(path)
        if path == "/backend-api/wham/accounts/check":
            answer = accounts_check(rec.headers.get("authorization", ""))
            if answer is None:
                return self._json({"detail": "Could not validate your token"}, 401)
        if answer is not None:
            return self._json(answer)
        if path.startswith("/v1/models"):
            return self._json({"data": [], "object": "list"})
        self._json({"error": {"type": "not_found", "message": path}}, 404)

    def do_POST(self) -> None:
        rec = self._record()
        path = rec.path.split("?")[0]
        try:
            req = json.loads(rec.body or b"{}")
        except ValueError:
            req = {}
        if not isinstance(req, dict):
            req = {}
        model = str(req.get("model", "fake-model"))
        if path == "/v1/messages":
            blocks = self.api.claude_turn(req) if self.api.claude_turn else None
            if req.get("stream"):
                return self._send(200, anthropic_stream(model, blocks), "text/event-stream")
            return self._json(anthropic_message(model))
        if path == "/v1/messages/count_tokens":
            return self._json({"input_tokens": 5})
        if path in ("/v1/responses", "/backend-api/codex/responses"):
            calls = self.api.codex_turn(req) if self.api.codex_turn else None
            return self._send(200, responses_stream(model, calls), "text/event-stream")
        if path == "/backend-api/codex/analytics-events/events":
            return self._json({})
        if path == "/backend-api/ps/mcp":
            return self._mcp(req)
        self._json({"error": {"type": "not_found", "message": path}}, 404)

    def _mcp(self, req: dict[str, Any]) -> None:
        """The hosted-apps MCP server (streamable HTTP, JSON answers) with no apps."""
        if "id" not in req:  # a notification
            return self._send(202, b"")
        result = MCP_RESULTS.get(str(req.get("method")))
        if result is None:
            err = {"code": -32601, "message": f"method not found: {req.get('method')}"}
            return self._json({"jsonrpc": "2.0", "id": req["id"], "error": err})
        self._json({"jsonrpc": "2.0", "id": req["id"], "result": result})


def start(address: str, tmp: Path, port: int = 443) -> FakeProviderAPI:
    ca = trustme.CA()
    cert = ca.issue_cert(*HOSTS)
    ca_path = tmp / "fake-upstream-ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(ctx)
    ctx.set_alpn_protocols(["http/1.1"])
    api = FakeProviderAPI(address, port, ca_path)
    handler = type("Handler", (_Handler,), {"api": api})
    server = ThreadingHTTPServer((address, port), handler)
    server.daemon_threads = True
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    api.server = server
    api.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return api
