"""The addon hooks on fabricated flows: order of checks, stripping, injection, 403 bodies."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

from egress_unit_env import CANARY, SECRET, Env
from mitmproxy.test import tflow, tutils

from bot_bottle.policy.rules import BUG


def flow(
    host: str = "api.example.test",
    path: str = "/v1/x",
    method: str = "GET",
    content: bytes = b"",
    headers: dict[str, str] | None = None,
    connect: bool = True,
) -> tflow.HTTPFlow:
    f = tflow.tflow()
    f.request = tutils.treq(
        host=host,
        port=443,
        path=path.encode(),
        method=method.encode(),
        content=content,
        scheme=b"https",
        authority=b"",
    )
    f.request.headers.clear()
    f.request.headers["host"] = host
    for k, v in (headers or {}).items():
        f.request.headers[k] = v
    f.client_conn.tls = True
    f.client_conn.sni = host
    return f


def run(env: Env, f: tflow.HTTPFlow, connect_host: str | None = "same") -> tflow.HTTPFlow:
    if connect_host:
        c = tflow.tflow()
        c.client_conn = f.client_conn
        c.request = tutils.treq(
            method=b"CONNECT",
            host=f.request.host if connect_host == "same" else connect_host,
            port=443,
            path=b"",
            scheme=b"",
            authority=b"",
        )
        env.addon.http_connect(c)
        assert c.response is None
    env.addon.requestheaders(f)
    asyncio.run(env.addon.request(f))
    return f


def denied(f: tflow.HTTPFlow, rule: str) -> str:
    assert f.response is not None and f.response.status_code == 403
    assert f.response.headers["x-bot-bottle-denied"] == rule
    text = f.response.get_text()
    assert text.startswith(f"bot-bottle egress denied {f.request.method} ")
    # The hint is the rule's own or a more precise one, never empty, and a bug report
    # only where a check failed closed.
    hint = text.split("\nto allow: ", 1)[1].strip()
    assert hint and (hint == BUG) == (rule in ("internal", "policy-error")), text
    return text


def test_allowed_request_strips_agent_auth_and_injects(env: Env) -> None:
    f = run(
        env,
        flow(
            headers={
                "authorization": "Bearer placeholder",
                "x-api-key": "k",
                "cookie": "a=b",
                "proxy-authorization": "Basic eA==",
            }
        ),
    )
    assert f.response is None
    h = f.request.headers
    assert h["authorization"] == f"Bearer {SECRET}"
    assert "x-api-key" not in h and "cookie" not in h and "proxy-authorization" not in h
    assert f.request.host == "93.184.216.10" and h["host"] == "api.example.test"


def test_basic_scheme_is_base64_of_user_pass(env: Env) -> None:
    f = run(env, flow(host="basic.example.test", path="/any"))
    assert f.request.headers["authorization"] == "Basic " + base64.b64encode(b"u:p").decode()


def test_no_route_path_method(env: Env) -> None:
    text = denied(run(env, flow(host="x.test"), None), "route")
    assert "not in the egress routes" in text
    assert "add `- host: x.test` under bottles.unit.egress.routes" in text
    assert "/v2" in denied(run(env, flow(path="/v2/a")), "path")
    denied(run(env, flow(method="DELETE")), "method")
    denied(run(env, flow(path="/v1/%2e%2e/admin")), "path-rejected")


def _connect(env: Env, host: str, port: int = 443) -> tflow.HTTPFlow:
    c = tflow.tflow()
    c.request = tutils.treq(
        method=b"CONNECT", host=host, port=port, path=b"", scheme=b"", authority=b""
    )
    env.addon.http_connect(c)
    return c


def test_connect_without_route_refused_on_an_undeclared_port(env: Env) -> None:
    c = _connect(env, "evil.test", 8443)
    assert "nothing is declared on port 8443" in denied(c, "connect")
    assert env.audit()[-1]["rule"] == "connect"


def test_connect_without_route_on_443_is_accepted_and_its_requests_denied(env: Env) -> None:
    """The tunnel exists only so the agent can read why: each request gets the body
    plain HTTP gets, with the route that would allow it."""
    f = flow(host="evil.test", path="/pkg/x?y=1")
    c = _connect(env, "evil.test")
    assert c.response is None
    f.client_conn = c.client_conn
    env.addon.requestheaders(f)
    text = denied(f, "route")
    assert "to allow: add `- host: evil.test` under bottles.unit.egress.routes" in text
    rec = env.audit()[-1]
    assert (rec["host"], rec["path"], rec["port"], rec["rule"]) == (
        "evil.test", "/pkg/x", 443, "route"
    )  # fmt: skip


def test_unrouted_tunnel_never_dials_on_its_own(env: Env) -> None:
    """Whatever the connection strategy, a dial on a tunnel whose host has no route is
    refused (and resolves nothing) unless a request on it passed every check."""
    from types import SimpleNamespace

    c = _connect(env, "evil.test")
    server = SimpleNamespace(address=("evil.test", 443), error=None, tls=True, sni=None)
    asyncio.run(env.addon.server_connect(SimpleNamespace(server=server, client=c.client_conn)))
    assert server.error and "not dialled" in server.error
    rec = env.audit()[-1]
    assert (rec["kind"], rec["rule"], rec["host"]) == ("connection", "connect", "evil.test")


def test_secret_in_a_host_without_route_is_refused_at_connect(env: Env) -> None:
    """A host name carrying a secret is refused at CONNECT and audited as the canary it
    holds (redacted), not given a tunnel like any other unlisted host."""
    c = _connect(env, f"{CANARY}.evil.test")
    denied(c, "canary")
    assert CANARY not in env.audit_path.read_text()


def test_secret_in_a_request_without_route_is_audited_as_dlp(env: Env) -> None:
    c = _connect(env, "evil.test")
    f = flow(host="evil.test", path=f"/x?k={CANARY}")
    f.client_conn = c.client_conn
    env.addon.requestheaders(f)
    denied(f, "canary")
    assert CANARY not in env.audit_path.read_text()


def test_sni_connect_host_must_agree(env: Env) -> None:
    f = flow()
    f.client_conn.sni = "open.example.test"
    assert "hosts disagree" in denied(run(env, f), "host-mismatch")
    denied(run(env, flow(), connect_host="open.example.test"), "host-mismatch")


def test_dlp_runs_before_injection_and_never_logs_the_value(env: Env) -> None:
    denied(run(env, flow(method="POST", content=f"x={SECRET}".encode())), "dlp")
    text = denied(run(env, flow(method="POST", content=CANARY.encode())), "canary")
    assert "exfiltration attempt" in text
    denied(run(env, flow(headers={"x-t": "ghp_" + "b" * 36})), "dlp")
    denied(run(env, flow(path=f"/v1/{SECRET}")), "dlp")
    # Normalizing decodes "%73" to "s": the path that would be forwarded is scanned too.
    denied(run(env, flow(path=f"/v1/%{ord(SECRET[0]):02x}{SECRET[1:]}")), "dlp")
    log = env.audit_path.read_text()
    assert SECRET not in log and CANARY not in log
    assert "[redacted" in log


def test_injected_credential_is_not_scanned(env: Env) -> None:
    f = run(env, flow(method="POST", content=b"plain"))
    assert f.response is None and f.request.headers["authorization"].endswith(SECRET)


PLACEHOLDER_JWT = (
    "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
    "eyJleHAiOjQxMDI0NDQ4MDAsInN1YiI6ImJvdC1ib3R0bGUtcGxhY2Vob2xkZXIifQ.bot-bottle-placeholder"
)


def test_stripped_headers_are_not_scanned(env: Env) -> None:
    """A client's placeholder JWT in Authorization never leaves (it is replaced), so it is
    not a leak; the same token in a header that is forwarded is one."""
    f = run(env, flow(headers={"authorization": f"Bearer {PLACEHOLDER_JWT}"}))
    assert f.response is None and f.request.headers["authorization"] == f"Bearer {SECRET}"
    denied(run(env, flow(headers={"x-forwarded-token": PLACEHOLDER_JWT})), "dlp")
    denied(run(env, flow(path=f"/v1/x?t={PLACEHOLDER_JWT}")), "dlp")


def test_unresolvable_host_says_so(env: Env) -> None:
    async def nxdomain(host: str, port: int) -> list[str]:
        return []

    env.addon.resolve = nxdomain
    text = denied(run(env, flow(host="nxdomain.example.test", path="/")), "resolve")
    assert "did not resolve" in text and "egress.hosts" in text


def test_ssrf_denies_private_address(env: Env) -> None:
    assert "10.0.0.5" in denied(run(env, flow(host="open.example.test", path="/")), "ssrf")


def test_git_push_denied(env: Env) -> None:
    f = run(env, flow(path="/v1/repo.git/info/refs?service=git-receive-pack"))
    assert "git gate" in denied(f, "git-push")


def test_passthrough_ignored_only_with_matching_sni(env: Env) -> None:
    from types import SimpleNamespace

    c = tflow.tflow()
    c.request = tutils.treq(
        method=b"CONNECT", host="pass.example.test", port=443, path=b"", scheme=b"", authority=b""
    )
    env.addon.http_connect(c)
    for sni, ignored in (("pass.example.test", True), ("api.example.test", False)):
        data = SimpleNamespace(
            context=SimpleNamespace(client=c.client_conn),
            client_hello=SimpleNamespace(sni=sni),
            ignore_connection=False,
        )
        env.addon.tls_clienthello(data)
        assert data.ignore_connection is ignored


def test_server_connect_pins_checked_address(env: Env) -> None:
    from types import SimpleNamespace

    f = run(env, flow())
    server = SimpleNamespace(address=(f.request.host, 443), error=None, tls=True, sni=None)
    asyncio.run(env.addon.server_connect(SimpleNamespace(server=server, client=f.client_conn)))
    assert server.error is None and server.sni == "api.example.test"
    bad = SimpleNamespace(address=("127.0.0.1", 443), error=None, tls=True, sni=None)
    asyncio.run(env.addon.server_connect(SimpleNamespace(server=bad, client=f.client_conn)))
    assert bad.error and "denied" in bad.error
    rec = env.audit()[-1]
    assert (rec["kind"], rec["rule"], rec["host"]) == ("connection", "ssrf", "127.0.0.1")


def _tunnel_context(env: Env, f: tflow.HTTPFlow) -> Any:
    """A connection's layer stack as mitmproxy builds it after a CONNECT."""
    from mitmproxy import options
    from mitmproxy.proxy.context import Context
    from mitmproxy.proxy.layers import HttpLayer, modes
    from mitmproxy.proxy.layers.http import HTTPMode, HttpStream

    ctx = Context(f.client_conn, options.Options())
    ctx.server.address = ("api.example.test", 443)
    modes.HttpProxy(ctx)
    HttpLayer(ctx, HTTPMode.regular)
    HttpStream(ctx, 1)
    return ctx


def _decide(env: Env, ctx: Any, make: Any) -> Any:
    from mitmproxy.proxy.layer import NextLayer

    nl = NextLayer(ctx)
    nl.layer = make(ctx)
    env.guard.next_layer(nl)
    return nl.layer


def test_only_tls_inside_a_tunnel(env: Env) -> None:
    from mitmproxy.proxy import layers

    from bot_bottle.sidecars.egress.layers import Refused

    f = run(env, flow())
    for make in (layers.DNSLayer, layers.TCPLayer, layers.UDPLayer, _http_transparent):
        ctx = _tunnel_context(env, f)
        chosen = _decide(env, ctx, make)
        assert isinstance(chosen, Refused), make
        assert ctx.layers[-1] is chosen  # the refused layer is off the stack
        rec = env.audit()[-1]
        assert (rec["kind"], rec["rule"], rec["host"]) == ("connection", "protocol",
                                                           "api.example.test")  # fmt: skip
    ctx = _tunnel_context(env, f)
    assert isinstance(_decide(env, ctx, layers.ServerTLSLayer), layers.ServerTLSLayer)


def _http_transparent(ctx: Any) -> Any:
    from mitmproxy.proxy.layers import HttpLayer
    from mitmproxy.proxy.layers.http import HTTPMode

    return HttpLayer(ctx, HTTPMode.transparent)


def test_only_http_inside_the_tunnels_tls(env: Env) -> None:
    from mitmproxy.proxy import layers

    from bot_bottle.sidecars.egress.layers import Refused

    f = run(env, flow())
    ctx = _tunnel_context(env, f)
    layers.ClientTLSLayer(ctx)
    assert isinstance(_decide(env, ctx, layers.DNSLayer), Refused)
    ctx = _tunnel_context(env, f)
    layers.ClientTLSLayer(ctx)
    assert isinstance(_decide(env, ctx, _http_transparent), layers.HttpLayer)


def test_only_the_relay_may_connect(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from bot_bottle.sidecars.egress.relay import UNIX_PEER, HandoffAdmission

    env = Env(tmp_path)
    env.guard.admission = HandoffAdmission()
    ok = SimpleNamespace(id="c1", peername=UNIX_PEER, error=None)
    env.guard.client_connected(ok)  # handed over from the bottle's Unix socket
    assert ok.error is None
    for i, peer in enumerate([("127.0.0.1", 40001), ("127.0.0.2", 0), ("::1", 0), ""]):
        other = SimpleNamespace(id=f"c{i + 2}", peername=peer, error=None)
        env.guard.client_connected(other)  # any TCP client of the loopback listener
        assert other.error, peer
    rec = env.audit()[-1]
    assert (rec["kind"], rec["rule"], rec["decision"]) == ("connection", "local-client", "deny")


def test_without_a_relay_every_client_is_served(env: Env) -> None:
    from types import SimpleNamespace

    c = SimpleNamespace(id="c4", peername=("127.0.0.1", 40003), error=None)
    env.guard.client_connected(c)
    assert c.error is None


def test_connection_without_any_decision_is_audited_when_it_ends(env: Env) -> None:
    f = run(env, flow(path="/v2/denied"))  # its flow carries the audit line
    env.guard.requestheaders(f)
    n = len(env.audit())
    env.guard.client_disconnected(f.client_conn)
    assert len(env.audit()) == n
    allowed = run(env, flow())  # allowed, then mitmproxy failed it before any response
    env.guard.requestheaders(allowed)
    env.guard.client_disconnected(allowed.client_conn)
    assert env.audit()[-1]["rule"] == "protocol"
    quiet = tflow.tflow().client_conn  # e.g. its HTTP/2 frames were refused by h2 itself
    env.guard.client_disconnected(quiet)
    rec = env.audit()[-1]
    assert (rec["kind"], rec["rule"], rec["decision"]) == ("connection", "protocol", "deny")


def test_lowercase_method_refused(env: Env) -> None:
    reason = denied(run(env, flow(method="get")), "method")
    assert "uppercase" in reason


def test_header_with_newline_refused(env: Env) -> None:
    f = flow(headers={"x-a": "ok"})
    f.request.headers.fields = (*f.request.headers.fields, (b"x-b", b"a\r\nHost: evil"))
    denied(run(env, f), "header")


def test_non_websocket_upgrade_refused(env: Env) -> None:
    denied(run(env, flow(headers={"upgrade": "h2c", "connection": "upgrade"})), "protocol")
    f = run(env, flow(headers={"upgrade": "websocket", "connection": "upgrade"}))
    assert f.response is None


def test_trailers_are_checked_and_scanned(env: Env) -> None:
    from mitmproxy import http

    f = flow(method="POST", content=b"x")
    f.request.trailers = http.Headers([(b"x-t", CANARY.encode())])
    denied(run(env, f), "canary")
    f = flow(method="POST", content=b"x")
    f.request.trailers = http.Headers([(b"x-t", b"a\nb")])
    denied(run(env, f), "header")


def test_exception_in_a_check_is_a_deny(env: Env, monkeypatch: object) -> None:
    import pytest

    mp: pytest.MonkeyPatch = monkeypatch  # type: ignore[assignment]
    gate = env.routes.current()
    mp.setattr(type(gate), "check_route", lambda *a: 1 / 0)
    denied(run(env, flow(), None), "internal")


def test_streaming_response_counts_bytes(env: Env) -> None:
    f = run(env, flow())
    f.response = tutils.tresp()
    env.addon.responseheaders(f)
    assert callable(f.response.stream)
    assert f.response.stream(b"abc") == b"abc"
    env.addon.response(f)
    rec = env.audit()[-1]
    assert rec["decision"] == "allow" and rec["bytes_in"] == 3
