"""Stand-in for the pure policy API (`bot_bottle.policy.route/ssrf/dlp/git_http`) while
it is being written in parallel. `install()` registers these only for modules that do not
exist yet, so the real ones win as soon as they land.
"""

from __future__ import annotations

import hashlib
import importlib.util
import ipaddress
import re
import sys
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from bot_bottle.policy.decision import Decision
from bot_bottle.policy.egress_policy import Route


class PathRejected(ValueError):
    pass


@dataclass(frozen=True)
class RouteMatch:
    decision: Decision
    route: Route | None
    path: str


def normalize_host(host: str) -> str:
    h = host.strip().lower()
    if h.endswith("."):
        h = h[:-1]
    if not h or not re.fullmatch(r"[a-z0-9.\-\[\]:_]+", h) or ".." in h:
        raise ValueError(f"bad host {host!r}")
    return h


def _host_matches(pattern: str, host: str) -> bool:
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


def find_host_route(routes: Sequence[Route], host: str) -> Route | None:
    h = normalize_host(host)
    return next((r for r in routes if _host_matches(r.host, h)), None)


def normalize_path(target: str) -> str:
    path = target.split("?", 1)[0] or "/"
    if re.search(r"%(2f|5c|2e)", path, re.I) or "\\" in path:
        raise PathRejected("encoded separator or dot in path")
    path = unquote(path)
    out: list[str] = []
    for seg in re.sub(r"/+", "/", path).split("/")[1:]:
        if seg == "..":
            raise PathRejected("dot-dot segment in path")
        if seg != ".":
            out.append(seg)
    return "/" + "/".join(out)


def decide_route(routes: Sequence[Route], method: str, host: str, target: str) -> RouteMatch:
    try:
        h = normalize_host(host)
        path = normalize_path(target)
    except ValueError as e:
        return RouteMatch(Decision.denied("path", str(e)), None, target)
    cands = [r for r in routes if _host_matches(r.host, h)]
    if not cands:
        return RouteMatch(
            Decision.denied("route", f"no route for {h}", f"add a route with host: {h}"), None, path
        )
    for r in cands:
        if r.paths and not any(path.startswith(p) for p in r.paths):
            continue
        if r.methods and method.upper() not in r.methods:
            return RouteMatch(
                Decision.denied(
                    "method",
                    f"{method} not allowed on {r.label}",
                    f"add {method} to methods of route {r.label}",
                    route=r.label,
                ),
                r,
                path,
            )
        return RouteMatch(Decision.allowed(route=r.label), r, path)
    return RouteMatch(
        Decision.denied(
            "path", f"path {path} not allowed for {h}", f"add {path} to paths of a route for {h}"
        ),
        None,
        path,
    )


def check_address(ip: str, allowlist: Sequence[str]) -> Decision:
    addr = ipaddress.ip_address(ip)
    for cidr in allowlist:
        if addr in ipaddress.ip_network(cidr, strict=False):
            return Decision.allowed("ssrf")
    if not addr.is_global or addr.is_multicast:
        return Decision.denied(
            "ssrf", f"address {ip} is not public", f"add {ip}/32 to ssrf_ip_allowlist"
        )
    return Decision.allowed("ssrf")


@dataclass(frozen=True)
class Finding:
    detector: str
    fingerprint: str
    start: int
    end: int


class Scanner:
    def __init__(
        self,
        exact: Mapping[str, str] | None = None,
        canaries: Sequence[str] = (),
        patterns: Sequence[str] = (),
    ) -> None:
        self._exact = [(k, v.encode()) for k, v in (exact or {}).items() if v]
        self._canaries = [c.encode() for c in canaries if c]
        self._patterns = [re.compile(p.encode()) for p in patterns]
        self._patterns.append(re.compile(rb"AKIA[0-9A-Z]{16}"))

    def first(self, data: bytes | str) -> Finding | None:
        b = data.encode() if isinstance(data, str) else data
        for c in self._canaries:
            if (i := b.find(c)) >= 0:
                return Finding("canary", _fp(c), i, i + len(c))
        for label, v in self._exact:
            if (i := b.find(v)) >= 0:
                return Finding(f"exact:{label}", _fp(v), i, i + len(v))
        for p in self._patterns:
            if m := p.search(b):
                return Finding("pattern", _fp(m.group()), m.start(), m.end())
        return None


def _fp(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()[:12]


def is_git_receive_pack(method: str, path: str, query: str) -> bool:
    return path.endswith("/git-receive-pack") or (
        path.endswith("/info/refs") and "service=git-receive-pack" in query
    )


_MODULES = {
    "bot_bottle.policy.route": (
        "PathRejected",
        "RouteMatch",
        "normalize_host",
        "find_host_route",
        "decide_route",
    ),
    "bot_bottle.policy.ssrf": ("check_address",),
    "bot_bottle.policy.dlp": ("Scanner", "Finding"),
    "bot_bottle.policy.git_http": ("is_git_receive_pack",),
}


def install() -> list[str]:
    """Register shim modules for any policy module that does not exist yet."""
    done = []
    for name, attrs in _MODULES.items():
        if name in sys.modules or importlib.util.find_spec(name) is not None:
            continue
        mod = types.ModuleType(name)
        for a in attrs:
            setattr(mod, a, globals()[a])
        sys.modules[name] = mod
        done.append(name)
    return done
