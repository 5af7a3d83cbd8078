"""What an agent may ask its operator through the supervise endpoint: pure checks.

The endpoint lives at `RESERVED_HOST` behind the bottle's own egress (the request never
leaves the host). An agent asks for a route (host, path prefix, methods, reason) or asks
a free-text question; both are parsed here from untrusted JSON with hard limits, and a
per-bottle token bucket bounds how often it may ask. Nothing here grants anything: an
answer only ever comes from the operator (`bot-bottle grant` / `deny`).
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Literal

from bot_bottle.policy.egress_policy import EgressPolicy, Route
from bot_bottle.policy.host import route_pattern

# `.internal` is reserved for private use (ICANN, 2024): it never resolves publicly.
RESERVED_HOST = "supervise.bot-bottle.internal"
API_PREFIX = "/v1/ask"
MAX_BODY = 8 * 1024
MAX_REASON = 1000
MAX_QUESTION = 4000
MAX_PATH = 512
MAX_WAIT = 60.0
# RFC 9110 methods plus PATCH (RFC 5789); CONNECT and TRACE are never routed.
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")

AskKind = Literal["route", "question"]


@dataclass(frozen=True)
class Ask:
    """One request from the agent, as validated."""

    kind: AskKind
    reason: str = ""
    host: str = ""
    path: str = "/"
    methods: tuple[str, ...] = ()
    question: str = ""
    port: int = 443  # over https: a granted route never carries cleartext

    def summary(self) -> str:
        """One line for the operator: what granting it would allow, or the question."""
        if self.kind == "question":
            return f"question: {self.question}"
        methods = ",".join(self.methods) if self.methods else "any method"
        port = "" if self.port == 443 else f":{self.port}"
        return f"route https://{self.host}{port}{self.path} ({methods})"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "reason": self.reason, "host": self.host, "path": self.path,
                "methods": list(self.methods), "question": self.question,
                "port": self.port}  # fmt: skip


# Denials a grant can fix: no route for the host, or none for this port, path or method.
ASKABLE_RULES = frozenset({"route", "port", "path", "method"})
ASK_COMMAND = "bot-bottle-ask"  # the in-bottle command that makes the same request


def ask_hint(method: str, host: str, path: str, port: int = 443) -> str:
    """The 403 body's "to ask" line: the request that asks the operator for exactly
    what was denied (a granted route is https, so `port` only when not 443)."""
    body: dict[str, Any] = {"kind": "route", "host": host}
    if port != 443:
        body["port"] = port
    body |= {"path": path or "/", "methods": [method] if method in METHODS else [],
             "reason": "<why the task needs it>"}  # fmt: skip
    poll = f"http://{RESERVED_HOST}{API_PREFIX}/ID?wait={int(MAX_WAIT)}"
    return (f"POST http://{RESERVED_HOST}{API_PREFIX} {json.dumps(body)} (or run "
            f"{ASK_COMMAND}), then GET {poll} for the operator's answer")  # fmt: skip


def parse_ask(body: bytes) -> Ask:
    """Parse the agent's request body; raises ValueError naming the bad field."""
    if len(body) > MAX_BODY:
        raise ValueError(f"request body is over {MAX_BODY} bytes")
    try:
        raw = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"request body is not JSON: {e}") from None
    if not isinstance(raw, dict):
        raise ValueError("request body must be a JSON object")
    unknown = sorted(set(raw) - {"kind", "reason", "host", "path", "methods", "question", "port"})
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r}")
    kind = raw.get("kind")
    reason = _text(raw, "reason", MAX_REASON)
    if kind == "question":
        question = _text(raw, "question", MAX_QUESTION)
        if not question.strip():
            raise ValueError("question: must not be empty")
        return Ask("question", reason=reason, question=question)
    if kind != "route":
        raise ValueError("kind: must be 'route' or 'question'")
    if not reason.strip():
        raise ValueError("reason: say why the route is needed")
    host = raw.get("host")
    if not isinstance(host, str) or not host:
        raise ValueError("host: required")
    try:
        host = route_pattern(host)
    except ValueError as e:
        raise ValueError(f"host: {e}") from None
    if host == RESERVED_HOST:
        raise ValueError("host: the supervise endpoint is not a route")
    path = raw.get("path", "/")
    if not isinstance(path, str) or not path.startswith("/") or len(path) > MAX_PATH:
        raise ValueError(f"path: must start with / and be at most {MAX_PATH} characters")
    if any(c in path for c in "?#\\") or not path.isprintable() or ".." in path.split("/"):
        raise ValueError("path: a plain path prefix (no query, fragment, .. or control bytes)")
    if not path.isascii() or " " in path:  # a request path arrives percent-encoded
        raise ValueError("path: ASCII only, percent-encoded as it is sent (a space is %20)")
    methods = raw.get("methods", [])
    if not isinstance(methods, list) or len(methods) > len(METHODS):
        raise ValueError("methods: must be a list of HTTP methods")
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"methods: {str(m)[:20]!r} is not one of {', '.join(METHODS)}")
    port = raw.get("port", 443)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise ValueError("port: a port number 1-65535")
    return Ask("route", reason=reason, host=host, path=path,
               methods=tuple(dict.fromkeys(methods)), port=port)  # fmt: skip


def _text(raw: dict[str, Any], name: str, limit: int) -> str:
    value = raw.get(name, "")
    if not isinstance(value, str):
        raise ValueError(f"{name}: must be a string")
    if len(value) > limit:
        raise ValueError(f"{name}: at most {limit} characters")
    # The operator reads this in a terminal: no escape sequences, bidi overrides or
    # other invisible characters (the display defuses them too; refused here first).
    bad = next((c for c in value if c not in "\n\t"
                and unicodedata.category(c) in ("Cc", "Cf")), None)  # fmt: skip
    if bad is not None:
        raise ValueError(f"{name}: control or format character U+{ord(bad):04X} not allowed")
    return value


@dataclass
class RateLimit:
    """A token bucket: `burst` asks at once, then one every `every` seconds."""

    burst: int = 5
    every: float = 30.0
    _tokens: float = field(default=-1.0)
    _at: float = 0.0

    def allow(self, now: float) -> bool:
        if self._tokens < 0:
            self._tokens, self._at = float(self.burst), now
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) / self.every)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


def credential_route(policy: EgressPolicy, host: str, port: int) -> Route | None:
    """The route whose credential a grant for https `host`:`port` carries: one the
    bottle started with (never another grant), to exactly that host and port, over TLS
    the egress verifies, with `auth`. The operator already gave the bottle that
    credential for that host; a grant that widens its paths or methods is what makes an
    ask for that host useful at all. None when there is no such route, or when several
    carry different credentials (the operator then adds the route to the manifest).
    Never for a wildcard host: an ask for `*.example.com` itself would otherwise spread
    that route's credential from its own paths to every path of every subdomain."""
    if host.startswith("*."):
        return None
    found = [r for r in policy.routes
             if r.auth is not None and r.host == host and r.port == port
             and r.scheme == "https" and not r.tls_passthrough and not r.expires
             and not str(r.source).startswith("grant ")]  # fmt: skip
    if not found or len({r.auth for r in found}) > 1:
        return None
    return found[0]
