"""The mitmproxy addon: wires each flow to the `Gate` checks, in the documented order.

http_connect:   route for the host -> DLP(host); a host with no route gets its tunnel
                anyway (on 443 and declared ports), so each request can be answered with
                the readable 403, and nothing on that tunnel is dialled unless a request
                passed every check (`server_connect`)
requestheaders: request syntax valid on every HTTP version -> route -> host agreement
                (CONNECT/SNI/Host) -> WebSocket-only upgrades -> git push -> DLP(host, URL, headers)
request:        trailers syntax + DLP(body, trailers) -> strip agent credentials
                -> inject sidecar credential -> SSRF
server_connect: SSRF again on the address actually dialled (pinned, no rebinding)
websocket:      DLP on every frame the agent sends, control frames included; a hit kills

Denials answer 403 with `denial_body` and are audited; so is every finished request.
Connection-level rules (who may connect, which protocols run) are `guard.ConnectionGuard`.

Longer than 300 lines: one method per mitmproxy event, in the order mitmproxy calls
them, each a thin adapter over `Gate`; the events are the seam, not the file.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from mitmproxy import http

from bot_bottle.policy.decision import Decision
from bot_bottle.policy.host import is_ip
from bot_bottle.policy.http_syntax import (
    RequestHead,
    check_fields,
    check_request,
    is_websocket_upgrade,
)
from bot_bottle.policy.supervise import ASKABLE_RULES, RESERVED_HOST, ask_hint
from bot_bottle.sidecars.egress.audit import AuditWriter
from bot_bottle.sidecars.egress.gate import (
    STRIP_ALWAYS,
    Gate,
    denial_body,
    dropped_headers,
)
from bot_bottle.sidecars.egress.guard import AUDITED
from bot_bottle.sidecars.egress.routes_file import RoutesFile
from bot_bottle.sidecars.egress.supervise import SuperviseEndpoint

if TYPE_CHECKING:
    from mitmproxy import connection, tls
    from mitmproxy.proxy.server_hooks import ServerConnectionHookData

Resolver = Callable[[str, int], Awaitable[list[str]]]

_T0 = "bb.t0"
_HOST = "bb.host"
_PATH = "bb.path"
_ROUTE = "bb.route"
_SUPERVISE = "bb.supervise"
_AUDITED = AUDITED
_BYTES_IN = "bb.bytes_in"


async def system_resolve(host: str, port: int) -> list[str]:
    """DNS through the event loop (used only for hosts the `hosts` map does not name)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class EgressAddon:
    """bot-bottle's egress policy as mitmproxy hooks; one instance per sidecar."""

    def __init__(
        self,
        routes: RoutesFile,
        audit: AuditWriter | None,
        resolve: Resolver = system_resolve,
        supervise: SuperviseEndpoint | None = None,
    ) -> None:
        self.routes = routes
        self.audit = audit
        self.resolve = resolve
        self.supervise = supervise
        self._connect: dict[str, tuple[str, int]] = {}
        self._passthrough: set[str] = set()
        # client id -> {(ip, port): hostname}: the SNI to use when we dial a checked IP.
        self._sni: dict[str, dict[tuple[str, int], str]] = {}
        # Clients whose CONNECT named a host with no route (the tunnel exists only to say
        # why); those that have not sent a request yet map to that host.
        self._unrouted: set[str] = set()
        self._unanswered: dict[str, str] = {}

    # --- CONNECT and TLS -------------------------------------------------------------

    def http_connect(self, flow: http.HTTPFlow) -> None:
        gate = self.routes.current()
        host, port = flow.request.host, flow.request.port
        flow.metadata[_T0] = time.monotonic()
        d = gate.check_connect(host, port)
        unrouted = not d.allow and d.rule == "route"
        if d.allow or unrouted:
            # The name leaves in DNS, SNI and Host: a secret in it is a leak like any other.
            leak = gate.scan(host)
            if not leak.allow:
                d, unrouted = leak, False
        if d.allow and d.rule == "passthrough":  # its record is written now, not later
            d = self._check_audit(d)
        if not d.allow and not unrouted:
            self._deny(flow, gate, d, host, "")
            return
        self._connect[flow.client_conn.id] = (host, port)
        if unrouted:
            # Accepted only so that the agent reads why: TLS is terminated with the
            # bottle's CA and `requestheaders` denies every request (its host has no
            # route). The audit line is per request, or one when the tunnel closes
            # without any (a client that does not trust the CA).
            self._unrouted.add(flow.client_conn.id)
            self._unanswered[flow.client_conn.id] = host
            flow.metadata[_AUDITED] = True
            return
        if d.rule == "passthrough":
            self._passthrough.add(flow.client_conn.id)
            self._audit(flow, gate, d, status=200)

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        """Passthrough routes are relayed without decryption, only when SNI names the
        CONNECT host; anything else is intercepted and then denied by the request checks."""
        cid = data.context.client.id
        if cid not in self._passthrough:
            return
        target = self._connect.get(cid)
        sni = data.client_hello.sni
        if target and sni and sni.lower().rstrip(".") == target[0].lower().rstrip("."):
            data.ignore_connection = True

    # --- requests --------------------------------------------------------------------

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        flow.metadata[_T0] = time.monotonic()
        gate = self.routes.current()
        req = flow.request
        host = req.host
        flow.metadata[_HOST] = host
        self._unanswered.pop(flow.client_conn.id, None)
        if self._for_supervise(flow, gate):
            flow.metadata[_SUPERVISE] = True
            d = self._check_supervise_headers(flow, gate)
            if not d.allow:
                self._deny(flow, gate, d, host, req.path)
            return  # answered in `request`, once the body is read and scanned
        try:
            d = self._check_headers(flow, gate)
        except Exception as e:
            d = Decision.denied("internal", f"internal error ({type(e).__name__})")
        d = d if not d.allow else self._check_audit(d)
        if not d.allow:
            self._deny(flow, gate, d, host, flow.metadata.get(_PATH, req.path))

    def _check_headers(self, flow: http.HTTPFlow, gate: Gate) -> Decision:
        req = flow.request
        cid = flow.client_conn.id
        data = req.data
        line = RequestHead(data.method, data.scheme, data.authority, data.path)
        d = check_request(line, req.headers.fields, req.is_http2)
        if not d.allow:
            return d
        connect = self._connect.get(cid)
        # Inside a tunnel the request goes to the CONNECT port, whatever Host says.
        port = connect[1] if connect is not None else req.port
        m = gate.check_route(req.method, req.host, req.path, req.scheme, port)
        flow.metadata[_PATH] = m.path
        if not m.decision.allow:
            return self._denied_route(flow, gate, m.decision)
        assert m.route is not None
        flow.metadata[_ROUTE] = m.route
        sni = flow.client_conn.sni if flow.client_conn.tls else None
        d = gate.check_agreement(req.host, connect[0] if connect else None, sni, req.host_header)
        if not d.allow:
            return d
        if connect is not None:
            req.data.port = connect[1]
        upgrade = req.headers.get("upgrade")
        if upgrade is not None and not is_websocket_upgrade(upgrade):
            return Decision.denied(
                "protocol", f"upgrade to {upgrade[:40]!r} refused (only WebSocket is inspected)"
            )
        query = req.path.partition("?")[2]
        d = gate.check_git_push(req.method, m.path, query)
        if not d.allow:
            return d
        headers: Any = req.headers  # mitmproxy's multidict methods are untyped
        # Headers stripped (or overwritten by injection) before forwarding never leave,
        # so they are not scanned: a client's placeholder credential (Codex sends a dummy
        # JWT, Claude a placeholder token) would otherwise be refused as a leak.
        dropped = dropped_headers(m.route)
        head = "\n".join(
            f"{k}: {v}" for k, v in headers.items(multi=True) if k.lower() not in dropped
        )
        head += f"\n:authority: {req.authority}\n:host: {req.host}"
        # Forward exactly the path that was checked, so upstream cannot read it differently.
        # Normalizing decodes escaped unreserved characters ("%73k-..." -> "sk-..."), so the
        # forwarded form is scanned as well as the raw one: the sidecar must not reassemble
        # a secret the agent split up with escapes.
        forwarded = m.path + ("?" + query if query else "")
        d = gate.scan(req.method + " " + req.path, forwarded if forwarded != req.path else "", head)
        if d.allow:
            req.path = forwarded
        return d

    def _for_supervise(self, flow: http.HTTPFlow, gate: Gate) -> bool:
        """A plain-HTTP request to the reserved host, outside any tunnel, in a bottle
        with supervise on: the sidecar answers it itself."""
        req = flow.request
        return (self.supervise is not None and gate.policy.supervise
                and req.host.lower() == RESERVED_HOST and req.scheme == "http"
                and flow.client_conn.id not in self._connect)  # fmt: skip

    def _check_supervise_headers(self, flow: http.HTTPFlow, gate: Gate) -> Decision:
        req = flow.request
        data = req.data
        line = RequestHead(data.method, data.scheme, data.authority, data.path)
        d = check_request(line, req.headers.fields, req.is_http2)
        if not d.allow:
            return d
        headers: Any = req.headers
        head = "\n".join(f"{k}: {v}" for k, v in headers.items(multi=True))
        return gate.scan(req.method + " " + req.path, head)

    async def _answer_supervise(self, flow: http.HTTPFlow, gate: Gate) -> None:
        assert self.supervise is not None
        req = flow.request
        headers: Any = req.headers
        raw = req.raw_content or b""
        d = gate.scan_body(raw, ",".join(headers.get_all("content-encoding")))
        if not d.allow:
            self._deny(flow, gate, d, RESERVED_HOST, req.path)
            return
        try:
            body = req.get_content(strict=True) or b""
        except ValueError:
            body = raw
        reply = await self.supervise.answer(req.method, req.path, body)
        flow.response = http.Response.make(
            reply.status, reply.content(), {"content-type": "application/json"}
        )
        ok = reply.status < 400
        d = Decision(ok, "supervise", reply.summary)
        self._audit(flow, gate, d, status=reply.status, decision="allow" if ok else "deny")

    def _denied_route(self, flow: http.HTTPFlow, gate: Gate, d: Decision) -> Decision:
        """A request no route allows is still scanned (URL, headers, names): nothing of it
        leaves, but a secret or canary in it is an exfiltration attempt the audit must
        name as such, not as a missing route."""
        req = flow.request
        headers: Any = req.headers  # mitmproxy's multidict methods are untyped
        head = "\n".join(
            f"{k}: {v}" for k, v in headers.items(multi=True) if k.lower() not in STRIP_ALWAYS
        )
        sni = flow.client_conn.sni or ""
        leak = gate.scan(req.method + " " + req.path, head, req.host, sni)
        return d if leak.allow else leak

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.metadata.get(_SUPERVISE) and flow.response is None:
            await self._answer_supervise(flow, self.routes.current())
            return
        if flow.response is not None or _ROUTE not in flow.metadata:
            return
        gate = self.routes.current()
        try:
            d = await self._check_body_and_dial(flow, gate)
        except Exception as e:
            d = Decision.denied("internal", f"internal error ({type(e).__name__})")
        d = d if not d.allow else self._check_audit(d)  # again: the body took time
        if not d.allow:
            self._deny(flow, gate, d, flow.metadata[_HOST], flow.metadata[_PATH])

    async def _check_body_and_dial(self, flow: http.HTTPFlow, gate: Gate) -> Decision:
        req = flow.request
        raw = req.raw_content or b""
        trailers = b""
        if req.trailers:
            # Trailers are headers sent after the body (HTTP/2, chunked HTTP/1.1): the
            # same syntax rules and the same DLP apply.
            d = check_fields(req.trailers.fields, req.is_http2, "trailer")
            if not d.allow:
                return d
            trailers = b"\n".join(k + b": " + v for k, v in req.trailers.fields)
        headers: Any = req.headers  # mitmproxy's multidict methods are untyped
        coding = ",".join(headers.get_all("content-encoding"))
        d = gate.scan_body(raw, coding)
        if d.allow and trailers:
            d = gate.scan(trailers)
        if not d.allow:
            return d
        if raw and "transfer-encoding" not in req.headers:
            # mitmproxy downgrades an HTTP/2 request that has a body but no content-length
            # to HTTP/1.1 with no framing at all, so the upstream would read the body as
            # the next request (smuggling). The body is buffered: state its length.
            req.headers["content-length"] = str(len(raw))
        route = flow.metadata[_ROUTE]
        for name in dropped_headers(route):
            req.headers.pop(name, None)
        if route.auth is not None:
            d = gate.check_injection(route, req.scheme, req.port)
            if not d.allow:
                return d
            header = gate.auth_header(route)
            if header is None:
                return Decision.denied(
                    "credential", f"sidecar holds no value for {route.auth.slot}"
                )
            req.headers[header[0]] = header[1]
        return await self._pin_address(flow, gate)

    async def _pin_address(self, flow: http.HTTPFlow, gate: Gate) -> Decision:
        """Resolve (hosts map first), SSRF-check, and dial the checked IP itself so DNS
        cannot change between check and connect. The Host header and SNI keep the name."""
        req = flow.request
        host = flow.metadata[_HOST]
        ip, d = gate.pick_address(await self._resolve(gate, host, req.port))
        if ip is None:
            return d
        req.data.host = ip
        self._sni.setdefault(flow.client_conn.id, {})[(ip, req.port)] = host
        return d

    async def _resolve(self, gate: Gate, host: str, port: int) -> list[str]:
        if is_ip(host):
            return [host]
        mapped = gate.mapped_address(host)
        if mapped:
            return [mapped]
        try:
            return await self.resolve(host, port)
        except OSError:
            return []

    async def server_connect(self, data: ServerConnectionHookData) -> None:
        server = data.server
        gate = self.routes.current()
        assert server.address is not None  # mitmproxy sets it before this hook
        host, port = server.address
        cid = data.client.id
        if cid in self._unrouted and (host, port) not in self._sni.get(cid, {}):
            # A tunnel opened for a host with no route dials only an address a request
            # on it pinned after passing every check (a route granted since): never on
            # its own, whatever mitmproxy's connection strategy, and no DNS either.
            d = Decision.denied(
                "connect", f"the tunnel's host has no route: {host}:{port} is not dialled"
            )
            server.error = f"bot-bottle egress denied connection to {host}: {d.reason}"
            self._deny_connection(gate, host, d)
            return
        try:
            ip, d = gate.pick_address(await self._resolve(gate, host, port))
        except Exception as e:
            ip, d = None, Decision.denied("ssrf", f"internal error ({type(e).__name__})")
        if ip is None:
            server.error = f"bot-bottle egress denied connection to {host}: {d.reason}"
            self._deny_connection(gate, host, d)
            return
        if ip != host:
            server.address = (ip, port)
        name = self._sni.get(data.client.id, {}).get((ip, port))
        if name and server.tls:
            server.sni = name

    # --- responses and streams -------------------------------------------------------

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        """Stream every response through (SSE, chunked, downloads) instead of buffering."""
        if flow.response is None or flow.response.status_code == 101:
            return
        flow.metadata[_BYTES_IN] = 0

        def count(chunk: bytes) -> bytes:
            flow.metadata[_BYTES_IN] += len(chunk)
            return chunk

        flow.response.stream = count

    def response(self, flow: http.HTTPFlow) -> None:
        if flow.metadata.get(_AUDITED) or flow.response is None:
            return
        gate = self.routes.current()
        route = flow.metadata.get(_ROUTE)
        d = Decision.allowed("route", route.label if route else "")
        in_bytes = flow.metadata.get(_BYTES_IN)
        if in_bytes is None:
            in_bytes = len(flow.response.raw_content or b"")
        self._audit(flow, gate, d, status=flow.response.status_code, bytes_in=in_bytes)

    def error(self, flow: http.HTTPFlow) -> None:
        if flow.metadata.get(_AUDITED):
            return
        gate = self.routes.current()
        route = flow.metadata.get(_ROUTE)
        msg = flow.error.msg if flow.error else "error"
        d = Decision(
            True, "route", reason=f"upstream error: {msg}", route=route.label if route else ""
        )
        self._audit(flow, gate, d, status=502, decision="error")

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        assert flow.websocket is not None
        msg = flow.websocket.messages[-1]
        if not msg.from_client:
            return
        gate = self.routes.current()
        d = gate.scan(msg.content)
        if d.allow:
            return
        msg.drop()  # type: ignore[no-untyped-call]  # unannotated in mitmproxy 11
        self._write(gate, self._fields(flow, d, status=0) | {"kind": "websocket"})
        if flow.killable:
            flow.kill()  # type: ignore[no-untyped-call]

    def client_disconnected(self, client: connection.Client) -> None:
        host = self._unanswered.pop(client.id, None)
        if host is not None and client.tls:
            # TLS was attempted but no request came (the client refused the bottle's CA,
            # or left): the denial is still recorded against the host. Without TLS the
            # guard has already recorded what it refused.
            port = self._connect.get(client.id, (host, 443))[1]
            gate = self.routes.current()
            d = gate.check_connect(host, port)
            if not d.allow:
                reason = f"{d.reason} (the tunnel closed before any request)"
                d = Decision.denied(d.rule, reason, d.hint)
                self._deny_connection(gate, host, d, port)
        self._unrouted.discard(client.id)
        self._connect.pop(client.id, None)
        self._passthrough.discard(client.id)
        self._sni.pop(client.id, None)

    # --- denial and audit ------------------------------------------------------------

    def _check_audit(self, d: Decision) -> Decision:
        """`d`, or a denial while the audit log could not take the request's record: a
        request is forwarded only when what it did will be on record (fail closed)."""
        why = self.audit.problem() if self.audit is not None else ""
        return Decision.denied("audit", why) if why else d

    def _deny(self, flow: http.HTTPFlow, gate: Gate, d: Decision, host: str, path: str) -> None:
        # Every 403 the agent reads (plain HTTP, and HTTPS to an unlisted host) is made
        # here; a way to ask for access (supervise) goes in `denial_body`'s `ask`.
        ask = self._ask(flow, gate, d, host, path)
        flow.response = http.Response.make(
            403,
            denial_body(flow.request.method, host, path, d, gate.policy.bottle, ask),
            {"content-type": "text/plain; charset=utf-8", "x-bot-bottle-denied": d.rule},
        )
        self._audit(flow, gate, d, status=403)

    def _ask(self, flow: http.HTTPFlow, gate: Gate, d: Decision, host: str, path: str) -> str:
        """How the agent can ask for what was denied: only in a bottle with supervise
        on, and only for a denial a granted route would lift (not a secret, not SSRF)."""
        if self.supervise is None or not gate.policy.supervise or d.rule not in ASKABLE_RULES:
            return ""
        connect = self._connect.get(flow.client_conn.id)
        https = connect is not None or flow.request.scheme == "https"
        port = connect[1] if connect is not None else flow.request.port
        return ask_hint(flow.request.method, host, path.partition("?")[0],
                        port if https else 443)  # fmt: skip

    def deny_connection(self, host: str, d: Decision) -> None:
        """Audit a refused connection (for `ConnectionGuard`)."""
        self._deny_connection(self.routes.current(), host, d)

    def _deny_connection(self, gate: Gate, host: str, d: Decision, port: int = 0) -> None:
        """Audit a refused connection, which has no HTTP request to describe."""
        rec: dict[str, Any] = {
            "kind": "connection",
            "host": host,
            "decision": "deny",
            "rule": d.rule,
            "reason": d.reason,
            "status": 0,
        }
        if port:
            rec["port"] = port
        self._write(gate, rec)

    def _fields(self, flow: http.HTTPFlow, d: Decision, status: int) -> dict[str, Any]:
        route = flow.metadata.get(_ROUTE)
        t0 = flow.metadata.get(_T0)
        connect = self._connect.get(flow.client_conn.id)
        return {
            "method": flow.request.method,
            "host": flow.metadata.get(_HOST, flow.request.host),
            # Where the request was headed (a tunnel's CONNECT port): what a route for
            # it would declare (`suggest` reads these).
            "scheme": flow.request.scheme,
            "port": connect[1] if connect is not None else flow.request.port,
            "path": flow.metadata.get(_PATH, flow.request.path),
            "route": d.route or (route.label if route else ""),
            "decision": "allow" if d.allow else "deny",
            "rule": d.rule,
            "reason": d.reason,
            "detector": d.detector,
            "fingerprint": d.fingerprint,
            "status": status,
            "bytes_out": len(flow.request.raw_content or b""),
            "duration_ms": round((time.monotonic() - t0) * 1000, 2) if t0 else 0.0,
        }

    def _audit(
        self,
        flow: http.HTTPFlow,
        gate: Gate,
        d: Decision,
        status: int,
        bytes_in: int = 0,
        decision: str = "",
    ) -> None:
        flow.metadata[_AUDITED] = True
        rec = self._fields(flow, d, status)
        rec["bytes_in"] = bytes_in
        if decision:
            rec["decision"] = decision
        self._write(gate, rec)

    def _write(self, gate: Gate, rec: dict[str, Any]) -> None:
        """Append to the audit log with host/path/reason redacted if they carry a secret
        (a denied URL may be the very thing DLP caught)."""
        if self.audit is None:
            return
        if rec.get("decision") == "deny" and gate.is_expected(
            str(rec.get("rule", "")), str(rec.get("host", "")), str(rec.get("path") or "")
        ):
            rec["expected"] = True
        for key in ("host", "path", "reason"):
            value = rec.get(key)
            if isinstance(value, str) and value and not gate.scan(value).allow:
                rec[key] = "[redacted: carries a secret]"
        try:
            self.audit.write(rec)
        except OSError as e:  # the writer remembers: later requests are refused
            print(f"egress: audit record not written ({e})", file=sys.stderr, flush=True)
