"""The egress checks over plain values, in the order the addon applies them.

`Gate` binds one routes file to the sidecar's credentials and DLP scanner; the
mitmproxy addon only pulls strings out of a flow and calls these. Every check is
fail-closed: an exception inside a decision becomes a deny (rule `internal`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ParamSpec

from bot_bottle.policy.content_coding import UndecodableBody, codings, decode_body
from bot_bottle.policy.decision import Decision
from bot_bottle.policy.dlp import Scanner
from bot_bottle.policy.egress_policy import EgressPolicy, Route, split_expected
from bot_bottle.policy.git_http import is_git_receive_pack
from bot_bottle.policy.route import (
    RouteMatch,
    RouteTable,
    covers,
    decide_route,
    declared_ports,
    find_host_route,
    no_route,
    normalize_host,
    route_line,
)
from bot_bottle.policy.rules import hint_for
from bot_bottle.policy.ssrf import check_address
from bot_bottle.sidecars.egress.credentials import Credentials

P = ParamSpec("P")

# Whatever the agent sends as a credential is dropped: it is either a placeholder or
# something the agent should not hold. Cookies are dropped only where we inject auth,
# since a session cookie there could ride alongside (or replace) the injected token.
STRIP_ALWAYS = ("authorization", "proxy-authorization", "x-api-key")
STRIP_ON_AUTH = ("cookie",)


def dropped_headers(route: Route) -> frozenset[str]:
    """Headers the agent sent that never reach upstream on `route`: its credentials,
    and on authenticated routes its cookies and the header the sidecar injects."""
    names = set(STRIP_ALWAYS)
    if route.auth is not None:
        names.update(STRIP_ON_AUTH)
        if route.auth.header:
            names.add(route.auth.header.lower())
    return frozenset(names)


def fail_closed(rule: str) -> Callable[[Callable[P, Decision]], Callable[P, Decision]]:
    """Turn any exception escaping a check into a deny; a buggy policy must not open up."""

    def wrap(fn: Callable[P, Decision]) -> Callable[P, Decision]:
        @functools.wraps(fn)
        def inner(*args: P.args, **kwargs: P.kwargs) -> Decision:
            try:
                return fn(*args, **kwargs)
            except Exception as e:
                return Decision.denied(rule, f"internal error in {rule} check ({type(e).__name__})")

        return inner

    return wrap


def denial_body(
    method: str, host: str, path: str, d: Decision, bottle: str = "", ask: str = ""
) -> str:
    """The 403 text the agent reads, plain HTTP and HTTPS alike: what was denied, why,
    how the operator could allow it, and (`ask`, when the bottle offers a way) how the
    agent can ask for it. Policy hints say `bottles.<name>`; the sidecar knows which
    bottle it serves."""
    hint = d.hint or hint_for(d.rule)
    if bottle:
        hint = hint.replace("bottles.<name>.", f"bottles.{bottle}.")
    body = f"bot-bottle egress denied {method} {host}{path}: {d.reason}\nto allow: {hint}\n"
    return body + (f"to ask: {ask}\n" if ask else "")


def host_only(authority: str) -> str:
    """`Host`-header value without its port; IPv6 stays bracketed (`[::1]:443` -> `[::1]`)."""
    a = authority.strip()
    if a.startswith("["):
        return a[: a.find("]") + 1] if "]" in a else a
    if a.count(":") > 1:
        return f"[{a}]"
    return a.rsplit(":", 1)[0] if ":" in a else a


def bracket(host: str) -> str:
    """mitmproxy hands IPv6 hosts unbracketed; route matching wants them bracketed."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


@dataclass(frozen=True)
class Gate:
    """One routes file bound to the sidecar's credentials; immutable, swapped on reload."""

    policy: EgressPolicy
    credentials: Credentials
    scanner: Scanner | None
    routes: RouteTable
    # Ports where a CONNECT to a host with no route is accepted so that its requests get
    # the readable 403: 443 and the ports the bottle's https routes use. Elsewhere such
    # a CONNECT is refused outright, as before (no TLS on ports nothing declares).
    denial_ports: frozenset[int] = frozenset({443})
    expected: RouteTable = field(default_factory=lambda: RouteTable(()))

    @classmethod
    def build(cls, policy: EgressPolicy, credentials: Credentials) -> Gate:
        scanner = None
        if policy.dlp.enabled:
            scanner = Scanner(
                exact=credentials.dlp_exact(policy),
                canaries=list(policy.dlp.canaries),
                patterns=list(policy.dlp.patterns),
            )
        ports = frozenset({443} | {r.port for r in policy.routes if r.scheme == "https"})
        expected = RouteTable.build(
            Route(h, paths=(p,) if p else ())
            for h, p in map(split_expected, policy.expected_denials)
        )
        return cls(policy, credentials, scanner, RouteTable.build(policy.routes), ports, expected)

    def is_expected(self, rule: str, host: str, path: str) -> bool:
        """A missing-route denial of what the agent's CLI calls in the background
        (`expected_denials`; a line without a path matches only a whole-host entry).
        Any other denial there (a secret, a canary) is not noise."""
        if rule not in ("route", "connect") or not self.expected.entries:
            return False
        try:
            entries = self.expected.for_host(normalize_host(bracket(host)))
        except ValueError:
            return False
        return any(not r.paths or (path and covers(r, path)) for r in entries)

    @fail_closed("connect")
    def check_connect(self, host: str, port: int = 443) -> Decision:
        """A CONNECT is answered for a host and port some route names; the allow says
        `passthrough` when that route's tunnel is relayed undecrypted. A host no route
        names is denied with rule `route` on `denial_ports` (the tunnel is accepted and
        each of its requests gets the readable 403; nothing is dialled) and with rule
        `connect` elsewhere (refused before TLS)."""
        route = find_host_route(self.routes, bracket(host), port)
        if route is None:
            other = find_host_route(self.routes, bracket(host))
            if other is not None:
                return Decision.denied(
                    "port",
                    f"CONNECT to port {port} of {host}: its routes declare only "
                    f"{declared_ports(self.routes.for_host(normalize_host(bracket(host))))}",
                    f"declare `port: {port}` on a route for {host}",
                    route=other.label,
                )
            try:
                h = normalize_host(bracket(host))
            except ValueError as e:
                return Decision.denied("connect", f"invalid host in CONNECT: {e}")
            if port in self.denial_ports:
                return no_route(h, "https", port)
            return Decision.denied(
                "connect",
                f"no route for host {h}, and nothing is declared on port {port}",
                f"add `{route_line(h, 'https', port)}` under bottles.<name>.egress.routes",
            )
        return Decision.allowed("passthrough" if route.tls_passthrough else "connect", route.label)

    @fail_closed("host-mismatch")
    def check_agreement(
        self, host: str, connect_host: str | None, sni: str | None, authority: str | None
    ) -> Decision:
        """The request's host, its Host/:authority, the CONNECT target and the SNI must all
        name the same host: otherwise a tunnel opened for an allowed host could carry
        requests for another one (domain fronting)."""
        seen = {"request": bracket(host)}
        if connect_host:
            seen["CONNECT"] = bracket(connect_host)
        if sni:
            seen["SNI"] = bracket(sni)
        if authority:
            seen["Host"] = host_only(authority)
        names = {k: normalize_host(v) for k, v in seen.items()}
        if len(set(names.values())) > 1:
            parts = ", ".join(f"{k} {v}" for k, v in names.items())
            return Decision.denied("host-mismatch", f"hosts disagree ({parts})")
        return Decision.allowed("host-mismatch")

    def check_route(
        self, method: str, host: str, target: str, scheme: str = "https", port: int = 443
    ) -> RouteMatch:
        return decide_route(self.routes, method, bracket(host), target, scheme=scheme, port=port)

    @fail_closed("git-push")
    def check_git_push(self, method: str, path: str, query: str) -> Decision:
        if is_git_receive_pack(method, path, query):
            return Decision.denied("git-push", "pushes go through the git gate")
        return Decision.allowed("git-push")

    @fail_closed("dlp")
    def scan(self, *parts: bytes | str) -> Decision:
        """DLP over what the agent sent; the finding is reported by detector + fingerprint."""
        if self.scanner is None:
            return Decision.allowed("dlp")
        for part in parts:
            if not part:
                continue
            f = self.scanner.first(part)
            if f is None:
                continue
            if f.detector == "canary":
                return Decision.denied(
                    "canary",
                    f"exfiltration attempt: canary credential in request (fingerprint "
                    f"{f.fingerprint})",
                    detector=f.detector,
                    fingerprint=f.fingerprint,
                )
            return Decision.denied(
                "dlp",
                f"request carries a secret (detector {f.detector}, fingerprint {f.fingerprint})",
                detector=f.detector,
                fingerprint=f.fingerprint,
            )
        return Decision.allowed("dlp")

    @fail_closed("dlp")
    def scan_body(self, raw: bytes, content_encoding: str) -> Decision:
        """DLP over a request body as sent and as the upstream will decode it. A body
        whose Content-Encoding cannot be undone is refused: it cannot be scanned."""
        if self.scanner is None:
            return Decision.allowed("dlp")
        if not codings(content_encoding):
            return self.scan(raw)
        try:
            decoded = decode_body(raw, content_encoding)
        except UndecodableBody as e:
            return Decision.denied(
                "encoding",
                f"request body cannot be decoded for scanning: {e}",
                "send the body uncompressed or as gzip, deflate, br or zstd",
            )
        return self.scan(raw, decoded)

    def mapped_address(self, host: str) -> str | None:
        """The `hosts`-map address for a host; it wins over DNS."""
        try:
            return self.policy.hosts.get(normalize_host(host))
        except Exception:
            return None

    def pick_address(self, candidates: Sequence[str]) -> tuple[str | None, Decision]:
        """First resolved address that passes the SSRF check, else the first denial."""
        first_denial = Decision.denied(
            "resolve",
            "the host name did not resolve",
            hint_for("resolve"),
        )
        for i, ip in enumerate(candidates):
            d = check_address(ip, self.policy.ssrf_ip_allowlist)
            if d.allow:
                return ip, d
            if i == 0:
                first_denial = d
        return None, first_denial

    def auth_header(self, route: Route) -> tuple[str, str] | None:
        return None if route.auth is None else self.credentials.header_for(route.auth)

    @fail_closed("credential")
    def check_injection(self, route: Route, scheme: str, port: int) -> Decision:
        """A credential leaves only over TLS (which mitmproxy verifies against the
        upstream bundle) to the port its route declares: never in cleartext, never to
        another service on the same host. Route matching already ensures this; checked
        again where the value is written, since that is the step that must not go wrong."""
        if route.scheme != "https" or scheme != "https" or port != route.port:
            return Decision.denied(
                "credential",
                f"route {route.label} injects its credential only over https to port "
                f"{route.port}, not {scheme} to port {port}",
                f"use https://{route.host}:{route.port}",
                route=route.label,
            )
        return Decision.allowed("credential", route.label)
