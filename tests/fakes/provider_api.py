"""Fake provider APIs on loopback, over TLS with a throwaway trustme CA.

One server answers as `api.anthropic.com` (Messages API, SSE), `api.openai.com`
(Responses API, SSE) and `chatgpt.com` (the ChatGPT backend Codex uses in chatgpt
mode). It records every request (method, path, headers, body) so tests can assert
what the egress forwarded, e.g. the injected bearer token.

It listens on port 443 of a loopback address of the caller's choice (the agent
CLIs dial :443; the manifest's `egress.hosts` maps their names to this address).
"""

from __future__ import annotations

import json
import ssl
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme

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

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def bearers(self, path_prefix: str = "") -> list[str]:
        return [
            r.headers.get("authorization", "") for r in self.requests
            if r.path.startswith(path_prefix)
        ]  # fmt: skip


def _sse(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    return b"".join(
        f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events
    )


def anthropic_stream(model: str) -> bytes:
    msg = {"id": "msg_fake1", "type": "message", "role": "assistant", "model": model,
           "content": [], "stop_reason": None, "stop_sequence": None,
           "usage": {"input_tokens": 5, "output_tokens": 1}}  # fmt: skip
    return _sse([
        ("message_start", {"type": "message_start", "message": msg}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("ping", {"type": "ping"}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": CLAUDE_REPLY}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta",
                           "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                           "usage": {"output_tokens": 4}}),
        ("message_stop", {"type": "message_stop"}),
    ])  # fmt: skip


def anthropic_message(model: str) -> dict[str, Any]:
    return {"id": "msg_fake2", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": CLAUDE_REPLY}], "stop_reason": "end_turn",
            "stop_sequence": None, "usage": {"input_tokens": 5, "output_tokens": 4}}  # fmt: skip


def responses_stream(model: str) -> bytes:
    rid = f"resp_{uuid.uuid4().hex[:12]}"
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
    return {"models": []}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    api: FakeProviderAPI

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _record(self) -> Recorded:
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n) if n else b""
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
        if path.endswith("/codex/models"):
            return self._json(codex_models())
        if path.endswith("/wham/accounts/check"):
            return self._json({"accounts": [{"id": "acct-fake", "name": "fake",
                                             "structure": "personal"}],
                               "account_ordering": ["acct-fake"]})  # fmt: skip
        if path.endswith("/wham/settings/user"):
            return self._json({})
        if path.startswith("/backend-api/"):
            return self._json({})
        if path.startswith("/v1/models"):
            return self._json({"data": [], "object": "list"})
        self._json({"error": {"type": "not_found", "message": path}}, 404)

    def do_POST(self) -> None:
        rec = self._record()
        path = rec.path.split("?")[0]
        try:
            req = json.loads(rec.body or b"{}")
        except json.JSONDecodeError:
            req = {}
        model = str(req.get("model", "fake-model")) if isinstance(req, dict) else "fake"
        if path == "/v1/messages":
            if req.get("stream"):
                return self._send(200, anthropic_stream(model), "text/event-stream")
            return self._json(anthropic_message(model))
        if path == "/v1/messages/count_tokens":
            return self._json({"input_tokens": 5})
        if path.endswith("/responses"):
            return self._send(200, responses_stream(model), "text/event-stream")
        if path.startswith("/backend-api/"):
            return self._json({})
        self._json({"error": {"type": "not_found", "message": path}}, 404)


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
