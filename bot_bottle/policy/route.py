"""Route matching: which declared route, if any, allows a request.

Hosts and paths are normalized before they are compared, and anything that
cannot be normalized unambiguously is denied: the proxy and the upstream must
never disagree about which resource a request names, or a path trick becomes
an allowlist bypass.

Longer than 300 lines: host and path normalization sit beside the matching that
relies on them, each with the reason it exists; split it when a third concern arrives.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from bot_bottle.policy.decision import Decision
from bot_bottle.policy.egress_policy import DEFAULT_PORTS, Route
from bot_bottle.policy.host import normalize_host, route_pattern

__all__ = ["normalize_host"]  # re-exported: request hosts are normalized here too

# RFC 3986 pchar plus "/" and "%": anything else in a path is refused outright.
_PATH_RE = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*\Z")
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_HEX = frozenset("0123456789abcdefABCDEF")
_MAX_TARGET = 65536


class PathRejected(ValueError):
    """A request path that cannot be normalized without guessing how the upstream reads it."""


@dataclass(frozen=True)
class RouteMatch:
    """Result of `decide_route`: the decision, the route that allowed it, the path checked.

    `path` is the normalized path the decision was made on ("" when the target was
    rejected); the sidecar should forward this path so upstream sees what was checked.
    """

    decision: Decision
    route: Route | None
    path: str


def normalize_path(target: str) -> str:
    """Normalized path of a request target: dot-segments resolved, `//` collapsed, query dropped.

    Only unreserved characters are percent-decoded; other escapes are kept with
    uppercase hex. Raises PathRejected for anything an upstream could read differently.
    """
    if not isinstance(target, str):
        raise PathRejected("request target is not text")
    if len(target) > _MAX_TARGET:
        raise PathRejected("request target is too long")
    path, _, query = target.partition("?")
    for ch in query:
        if ord(ch) < 0x21 or ord(ch) >= 0x7F:
            raise PathRejected("query contains a control, space or non-ASCII character")
    if not _PATH_RE.match(path):
        raise PathRejected(f"path contains a disallowed character: {_first_bad(path)}")
    if not path.startswith("/"):
        raise PathRejected("path is not absolute (must start with `/`)")
    raw_segments = path.split("/")[1:]
    out: list[str] = []
    for raw in raw_segments:
        seg = _decode_segment(raw) if "%" in raw else raw
        if seg in (".", ".."):
            if seg != raw:
                # "%2e%2e" survives naive checks and is decoded to ".." by some servers.
                raise PathRejected("path contains a percent-encoded dot-segment")
            if seg == "..":
                if not out:
                    raise PathRejected("path climbs above the root with `..`")
                out.pop()
        elif seg.split(";", 1)[0] in (".", ".."):
            # Tomcat and friends strip ";params" before resolving, turning "..;" into "..".
            raise PathRejected("path contains a dot-segment with parameters (`..;`)")
        elif seg:
            out.append(seg)
    trailing = raw_segments[-1] in ("", ".", "..")
    if not out:
        return "/"
    return "/" + "/".join(out) + ("/" if trailing else "")


def _first_bad(path: str) -> str:
    for ch in path:
        if not _PATH_RE.match(ch):
            if ch == "\\":
                return "raw backslash"
            if ch == "\x00":
                return "NUL byte"
            if ord(ch) < 0x20 or ord(ch) == 0x7F:
                return f"control character 0x{ord(ch):02x}"
            return repr(ch)
    return "?"


def _decode_segment(raw: str) -> str:
    parts = raw.split("%")
    out = [parts[0]]
    for part in parts[1:]:
        if len(part) < 2 or part[0] not in _HEX or part[1] not in _HEX:
            raise PathRejected("path contains a malformed percent-escape")
        code = int(part[:2], 16)
        ch = chr(code)
        if ch in "/\\":
            # An encoded separator is one segment to us and two to a server that
            # decodes before routing: the classic prefix-allowlist bypass.
            raise PathRejected("path contains an encoded `/` or `\\` (%2F, %5C)")
        if code < 0x20 or code == 0x7F:
            raise PathRejected("path contains an encoded NUL or control character")
        if code == 0x25 and part[2:4].upper() in ("2E", "2F", "5C"):
            # "%252e" decodes to "%2e" and then, on servers that decode twice, to ".".
            raise PathRejected("path contains a double-encoded dot or separator")
        if ch in _UNRESERVED:
            out.append(ch + part[2:])
        else:
            out.append("%" + part[:2].upper() + part[2:])
    return "".join(out)


@lru_cache(maxsize=4096)
def _prefix(prefix: str) -> tuple[str, str] | None:
    """(normalized prefix, prefix as a segment boundary) for a route path, None if unusable."""
    try:
        p = normalize_path(prefix)
    except PathRejected:
        return None
    return p, p if p.endswith("/") else p + "/"


def _path_allowed(route: Route, path: str) -> bool:
    if not route.paths:
        return True
    for raw in route.paths:
        p = _prefix(raw)
        if p is not None and (path == p[0] or path.startswith(p[1])):
            return True
    return False


def covers(route: Route, path: str) -> bool:
    """Whether `route`'s path prefixes cover a normalized `path` (no prefixes: all)."""
    return _path_allowed(route, path)


@dataclass(frozen=True)
class RouteTable:
    """Routes with their host patterns normalized: built once per policy, matched per request.

    Routes whose host pattern cannot be normalized are left out (they name nothing).
    """

    entries: tuple[tuple[Route, bool, str], ...]

    @classmethod
    def build(cls, routes: Iterable[Route]) -> RouteTable:
        out = []
        for r in routes:
            try:
                pattern = route_pattern(r.host)
            except ValueError:
                continue
            wild = pattern.startswith("*.")
            if wild:
                out.append((r, True, pattern[1:]))
            elif ":" in pattern:  # routes hold IPv6 without brackets; requests with
                out.append((r, False, f"[{pattern}]"))
            else:
                out.append((r, False, pattern))
        return cls(tuple(out))

    def for_host(self, host: str) -> list[Route]:
        """Routes naming a normalized host: exact, or `*.suffix` for subdomains only."""
        return [
            r
            for r, wild, v in self.entries
            if (host.endswith(v) and len(host) > len(v) if wild else host == v)
        ]


Routes = RouteTable | Sequence[Route]


def _table(routes: Routes) -> RouteTable:
    return routes if isinstance(routes, RouteTable) else RouteTable.build(routes)


def find_host_route(routes: Routes, host: str, port: int | None = None) -> Route | None:
    """First route whose host pattern names `host` (and, given `port`, declares that
    port), passthrough routes included.

    Used to gate CONNECT before any TLS is seen; returns None for invalid hosts.
    """
    try:
        h = normalize_host(host)
    except ValueError:
        return None
    matched = [r for r in _table(routes).for_host(h) if port is None or r.port == port]
    return matched[0] if matched else None


def route_line(host: str, scheme: str = "https", port: int = 443) -> str:
    """The manifest `egress.routes` entry that would name `host` on `scheme`/`port`, as
    the 403 body and `suggest` print it (one YAML line)."""
    extra = f", scheme: {scheme}" if scheme != "https" else ""
    if port != DEFAULT_PORTS.get(scheme, 443):
        extra += f", port: {port}"
    return f"- {{host: {host}{extra}}}" if extra else f"- host: {host}"


def no_route(host: str, scheme: str = "https", port: int = 443) -> Decision:
    """The denial for a host no route names, with the route that would allow it."""
    return Decision.denied(
        "route",
        f"host {host} is not in the egress routes",
        f"add `{route_line(host, scheme, port)}` under bottles.<name>.egress.routes",
    )


def declared_ports(routes: Sequence[Route]) -> str:
    """`https:443, http:8080`: where a host's routes may be reached, for denial reasons."""
    return ", ".join(sorted({f"{r.scheme}:{r.port}" for r in routes}))


def decide_route(
    routes: Routes,
    method: str,
    host: str,
    target: str,
    *,
    scheme: str = "https",
    port: int = 443,
) -> RouteMatch:
    """Allow or deny one inspected request against the declared routes. Never raises.

    `scheme` and `port` are those the request will be forwarded with; a route
    matches only with its own (a host allowed over https is not allowed in
    cleartext, nor on another port of the same host)."""
    try:
        return _decide(routes, method, host, target, scheme, port)
    except Exception as e:  # a buggy policy must fail closed, never open
        return RouteMatch(
            Decision.denied("policy-error", f"internal policy error: {type(e).__name__}: {e}"),
            None,
            "",
        )


def _decide(
    routes: Routes, method: str, host: str, target: str, scheme: str, port: int
) -> RouteMatch:
    try:
        path = normalize_path(target)
        path_error = ""
    except PathRejected as e:
        path, path_error = "", str(e)
    try:
        h = normalize_host(host)
    except ValueError as e:
        return RouteMatch(Decision.denied("route", f"invalid host: {e}"), None, path)

    by_host = _table(routes).for_host(h)
    candidates = [r for r in by_host if not r.tls_passthrough]
    if not candidates:
        if by_host:
            reason = f"{h} is a tls_passthrough route, so its requests are never inspected here"
            return RouteMatch(Decision.denied("route", reason), None, path)
        return RouteMatch(no_route(h, scheme, port), None, path)
    on_port = [r for r in candidates if r.scheme == scheme and r.port == port]
    if not on_port:
        return RouteMatch(
            Decision.denied(
                "port",
                f"{h} is allowed only as {declared_ports(candidates)}, not {scheme} to port {port}",
                f"use {candidates[0].scheme}://{h}:{candidates[0].port}, or declare "
                f"`port: {port}`"
                + (" and `scheme: http`" if scheme == "http" else "")
                + f" on a route for {h} (credentials only travel over https)",
                route=candidates[0].label,
            ),
            None,
            path,
        )
    candidates = on_port
    first = candidates[0]
    if path_error:
        return RouteMatch(
            Decision.denied(
                "path-rejected", f"request path rejected: {path_error}", route=first.label
            ),
            None,
            "",
        )
    by_path = [r for r in candidates if _path_allowed(r, path)]
    if not by_path:
        suggestion = "/" + path.split("/")[1] if path != "/" else "/"
        return RouteMatch(
            Decision.denied(
                "path",
                f"path {path} is not under an allowed prefix of route {first.label}",
                f"add `{suggestion}` to path_allowlist of route {first.host}",
                route=first.label,
            ),
            None,
            path,
        )
    method_ok = _TOKEN_RE.match(method) is not None if isinstance(method, str) else False
    for r in by_path:
        # Methods are compared exactly (route methods are uppercase): "get" is not
        # guessed to mean GET, since servers disagree on that.
        if method_ok and (not r.methods or method in r.methods):
            return RouteMatch(Decision.allowed("route", route=r.label), r, path)
    return RouteMatch(
        Decision.denied(
            "method",
            f"method {method!r} is not allowed on route {by_path[0].label}",
            f"add `{method}` to methods of route {by_path[0].host}",
            route=by_path[0].label,
        ),
        None,
        path,
    )
