"""Routes that would have allowed what a bottle was denied, for the operator to review.

`suggest` reads a bottle's audit log, keeps the denials a route would fix (no route for
the host, or the host's routes lack the port, path or method), and groups them by host
into manifest routes with the narrowest path prefixes that cover what was asked. It
only proposes: nothing here allows anything, and nothing is learnt by allowing first.
Hosts and paths come from the agent, so only what normalizes cleanly is proposed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot_bottle.policy.egress_policy import DEFAULT_PORTS
from bot_bottle.policy.host import normalize_host
from bot_bottle.policy.route import PathRejected, normalize_path

# Denials a route (or a wider one) would fix; anything else (a secret, SSRF, a protocol)
# is not a missing permission and is never suggested away.
ROUTE_RULES = frozenset({"route", "connect", "port", "path", "method"})
_METHOD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass(frozen=True)
class Denial:
    """One denied request (or tunnel, with no path) that a route would have allowed."""

    host: str
    scheme: str
    port: int
    path: str  # normalized; "" for a tunnel that closed before any request
    method: str  # "" when unknown
    existing: str  # the label of the host's route that fell short, if any


@dataclass(frozen=True)
class Suggestion:
    """A route to paste under `egress.routes`, with what was asked that it covers."""

    host: str
    scheme: str
    port: int
    paths: tuple[str, ...]  # empty: every path
    methods: tuple[str, ...]  # empty: every method
    asked: tuple[str, ...]  # "GET /x" lines, as denied
    extends: tuple[str, ...]  # labels of existing routes for this host that fell short

    def as_route(self) -> dict[str, Any]:
        """The manifest form (`egress.routes[]` keys), defaults left out."""
        out: dict[str, Any] = {"host": self.host}
        if self.scheme != "https":
            out["scheme"] = self.scheme
        if self.port != DEFAULT_PORTS.get(self.scheme, 443):
            out["port"] = self.port
        if self.paths:
            out["path_allowlist"] = list(self.paths)
        if self.methods:
            out["methods"] = list(self.methods)
        return out


def denial_of(rec: Mapping[str, Any], include_expected: bool = False) -> Denial | None:
    """The route-fixable denial an audit record describes, or None (an allow, another
    rule, an expected background call unless asked, or anything that does not
    normalize: a redacted or malformed host or path is never proposed)."""
    if rec.get("decision") != "deny" or rec.get("rule") not in ROUTE_RULES:
        return None
    if rec.get("kind", "request") not in ("request", "connection"):
        return None
    if rec.get("expected") and not include_expected:
        return None
    try:
        host = normalize_host(str(rec.get("host", "")))
    except ValueError:
        return None
    scheme = rec.get("scheme") if rec.get("scheme") in DEFAULT_PORTS else "https"
    port = rec.get("port")
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        port = DEFAULT_PORTS[str(scheme)]
    # A refused CONNECT (or a tunnel that closed first) has no path: it names the host.
    raw = rec.get("path") if rec.get("kind", "request") == "request" else ""
    path = ""
    if raw:
        try:
            path = normalize_path(str(raw))
        except PathRejected:
            return None
    method = str(rec.get("method", ""))
    if not method or not set(method) <= _METHOD_CHARS or len(method) > 20:
        method = ""
    existing = str(rec.get("route", "")) if rec.get("rule") != "route" else ""
    return Denial(host, str(scheme), port, path, method, existing)


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def narrowest_prefixes(paths: Iterable[str]) -> tuple[str, ...]:
    """Per first path segment, the longest segment prefix its paths share: a single
    path is its own prefix, `/v1/models` and `/v1/messages` give `/v1`. `/` (the root
    was asked) covers every path, so it is the only prefix then."""
    groups: dict[str, list[list[str]]] = {}
    for p in set(paths):
        segs = _segments(p)
        if not segs:
            return ("/",)
        groups.setdefault(segs[0], []).append(segs)
    out = []
    for members in groups.values():
        common = members[0]
        for segs in members[1:]:
            n = 0
            while n < min(len(common), len(segs)) and common[n] == segs[n]:
                n += 1
            common = common[:n]
        out.append("/" + "/".join(common))
    return tuple(sorted(out))


def suggest(denials: Iterable[Denial]) -> list[Suggestion]:
    """One route per host, scheme and port, covering every denial for it."""
    by_key: dict[tuple[str, str, int], list[Denial]] = {}
    for d in denials:
        by_key.setdefault((d.host, d.scheme, d.port), []).append(d)
    out = []
    for (host, scheme, port), ds in sorted(by_key.items()):
        paths = [d.path for d in ds if d.path]
        # A tunnel that never sent a request says nothing about paths or methods.
        blind = any(not d.path for d in ds)
        prefixes = () if blind or not paths else narrowest_prefixes(paths)
        methods = sorted({d.method for d in ds})
        asked = tuple(sorted({f"{d.method or '?'} {d.path or '(no request)'}" for d in ds}))
        out.append(
            Suggestion(
                host=host,
                scheme=scheme,
                port=port,
                paths=() if prefixes == ("/",) else prefixes,
                methods=() if blind or "" in methods else tuple(methods),
                asked=asked,
                extends=tuple(sorted({d.existing for d in ds if d.existing})),
            )
        )
    return out
