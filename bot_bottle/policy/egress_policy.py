"""The egress sidecar's whole configuration as plain values: the routes file.

bot-bottle renders this from a `BottlePlan` and the sidecar loads it (and reloads
it on atomic replace). It never holds a credential value: authenticated routes
name a token *slot* (`EGRESS_TOKEN_0`), whose value lives only in the sidecar's
environment. Protected host env values and sidecar-held tokens reach DLP the
same way, through slots.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from bot_bottle.policy.host import route_pattern
from bot_bottle.policy.patterns import pattern_error

AuthScheme = Literal["Bearer", "Basic", "header"]
RouteScheme = Literal["https", "http"]
DEFAULT_PORTS: Mapping[str, int] = {"https": 443, "http": 80}
FORMAT_VERSION = 1
SLOT_RE = re.compile(r"^EGRESS_(TOKEN|PROTECT)_[0-9]+$")


@dataclass(frozen=True)
class RouteAuth:
    """A credential the sidecar injects: scheme, header (for `header`), slot name."""

    scheme: AuthScheme
    slot: str
    header: str = ""


@dataclass(frozen=True)
class RouteSource:
    """Who declared a route: the manifest (`provider` None), a provider (`manifest`
    False), or a manifest route given a provider's credential. Written `manifest`,
    `claude`, `manifest+claude` in summaries and the routes file."""

    provider: str | None = None
    manifest: bool = True

    def __str__(self) -> str:
        if self.provider is None:
            return "manifest"
        return f"manifest+{self.provider}" if self.manifest else self.provider

    @property
    def credential(self) -> str:
        """Who the route's credential comes from: its provider, else the manifest."""
        return self.provider or "manifest"

    @classmethod
    def parse(cls, text: str) -> RouteSource:
        """The inverse of `str`; ValueError on anything else."""
        declared, plus, provider = text.partition("+")
        if plus and declared == "manifest" and provider and "+" not in provider:
            return cls(provider)
        if text == "manifest":
            return cls()
        if text and not plus:
            return cls(text, manifest=False)
        raise ValueError(f"{text!r} is not a route source (manifest, PROVIDER, manifest+PROVIDER)")


@dataclass(frozen=True)
class Route:
    """One allowed destination: host (exact or `*.suffix`), scheme and port, path
    prefixes, methods.

    Empty `paths` means every path; empty `methods` means every method. A request
    reaches the route only with its `scheme` to its `port`; an `http` route never
    carries `auth`, since a credential must only travel over verified TLS.
    `source` is provenance for summaries (`manifest` or a provider name, or `grant
    r-…` for a route the operator granted to a running bottle). A route with `expires`
    (Unix time, 0 for never) stops matching at that moment.
    """

    host: str
    paths: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    auth: RouteAuth | None = None
    tls_passthrough: bool = False
    source: RouteSource = RouteSource()
    scheme: RouteScheme = "https"
    port: int = 443
    expires: float = 0.0

    @property
    def label(self) -> str:
        """Short id used in audit lines and 403 bodies: the host, its scheme and port when
        they are not the https:443 default (two routes may differ only there), paths."""
        where = self.host
        if self.scheme != "https":
            where = f"{self.scheme}://{where}"
        if self.port != DEFAULT_PORTS[self.scheme]:
            where += f":{self.port}"
        return where + (f" {','.join(self.paths)}" if self.paths else "")


@dataclass(frozen=True)
class DlpSettings:
    """Outbound secret scanning. `protect_slots` name sidecar env vars whose values are
    protected host secrets; `canaries` are decoy values planted in the bottle."""

    enabled: bool = True
    patterns: tuple[str, ...] = ()
    protect_slots: tuple[str, ...] = ()
    canaries: tuple[str, ...] = ()


@dataclass(frozen=True)
class EgressPolicy:
    """Everything the egress sidecar enforces for one bottle."""

    bottle: str
    routes: tuple[Route, ...] = ()
    hosts: Mapping[str, str] = field(default_factory=dict)
    ssrf_ip_allowlist: tuple[str, ...] = ()
    upstream_ca: str = ""
    dlp: DlpSettings = field(default_factory=DlpSettings)
    # The agent may ask its operator for routes and answers (`policy/supervise.py`).
    supervise: bool = False
    # Where the agent's own CLI calls in the background (telemetry, update checks) and
    # no setting turns it off, as `host` or `host/path-prefix`: still denied, but marked
    # `expected` in the audit log so the denial list shows what the agent asked for.
    # Never an allow.
    expected_denials: tuple[str, ...] = ()

    def token_slots(self) -> tuple[str, ...]:
        return tuple(sorted({r.auth.slot for r in self.routes if r.auth}))

    def to_json(self) -> str:
        body = asdict(self)
        body["hosts"] = dict(self.hosts)
        for raw, route in zip(body["routes"], self.routes, strict=True):
            raw["source"] = str(route.source)
        body["version"] = FORMAT_VERSION
        return json.dumps(body, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> EgressPolicy:
        """Parse and validate a routes file; raises ValueError naming the bad field."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"routes file is not JSON: {e}") from e
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: Any) -> EgressPolicy:
        if not isinstance(raw, dict):
            raise ValueError("routes file must be a JSON object")
        if raw.get("version") != FORMAT_VERSION:
            raise ValueError(f"routes file version must be {FORMAT_VERSION}")
        routes = tuple(_route(r, f"routes[{i}]") for i, r in enumerate(raw.get("routes", [])))
        hosts = raw.get("hosts", {})
        if not isinstance(hosts, dict):
            raise ValueError("hosts must be an object of host -> IP")
        for name, ip in hosts.items():
            try:
                ipaddress.ip_address(ip)
            except ValueError as e:
                raise ValueError(f"hosts.{name}: {ip!r} is not an IP address") from e
        allow = tuple(raw.get("ssrf_ip_allowlist", ()))
        for i, cidr in enumerate(allow):
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError as e:
                raise ValueError(f"ssrf_ip_allowlist[{i}]: {cidr!r} is not a CIDR") from e
        d = raw.get("dlp", {})
        for slot in d.get("protect_slots", ()):
            _check_slot(slot, "dlp.protect_slots")
        dlp = DlpSettings(
            enabled=bool(d.get("enabled", True)),
            patterns=tuple(d.get("patterns", ())),
            protect_slots=tuple(d.get("protect_slots", ())),
            canaries=tuple(d.get("canaries", ())),
        )
        for i, pat in enumerate(dlp.patterns):
            error = pattern_error(pat) if isinstance(pat, str) else "must be a string"
            if error is not None:
                raise ValueError(f"dlp.patterns[{i}]: invalid regex: {error}")
        expected = raw.get("expected_denials", [])
        if not isinstance(expected, list):
            raise ValueError("expected_denials must be a list of hosts")
        for i, entry in enumerate(expected):
            try:
                route_pattern(split_expected(entry)[0])
            except ValueError as e:
                raise ValueError(f"expected_denials[{i}]: {e}") from None
        return cls(
            expected_denials=tuple(expected),
            bottle=str(raw.get("bottle", "")),
            routes=routes,
            hosts={str(k).lower(): str(v) for k, v in hosts.items()},
            ssrf_ip_allowlist=allow,
            upstream_ca=str(raw.get("upstream_ca", "")),
            dlp=dlp,
            supervise=raw.get("supervise", False) is True,
        )

    def without_expired(self, now: float) -> EgressPolicy:
        """The policy with the routes whose grant ended by `now` removed."""
        return replace(self, routes=tuple(r for r in self.routes if not 0 < r.expires <= now))


def _expires(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e11:
        raise ValueError(f"{where}.expires: must be a Unix time (0 for never)")
    return float(value)


def split_expected(entry: Any) -> tuple[str, str]:
    """`host/path-prefix` -> (host, `/path-prefix`); a bare host -> (host, "")."""
    if not isinstance(entry, str):
        raise ValueError("must be a string: host or host/path-prefix")
    host, slash, path = entry.partition("/")
    return host, slash + path


def _check_slot(slot: Any, where: str) -> None:
    if not isinstance(slot, str) or not SLOT_RE.match(slot):
        raise ValueError(f"{where}: {slot!r} is not a slot name like EGRESS_TOKEN_0")


def _source(raw: Any, where: str) -> RouteSource:
    try:
        return RouteSource.parse(raw if isinstance(raw, str) else "")
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


def _route(raw: Any, where: str) -> Route:
    if not isinstance(raw, dict) or not isinstance(raw.get("host"), str) or not raw["host"]:
        raise ValueError(f"{where}: needs a host")
    auth = None
    a = raw.get("auth")
    if a is not None:
        if a.get("scheme") not in ("Bearer", "Basic", "header"):
            raise ValueError(f"{where}.auth.scheme: must be Bearer, Basic or header")
        _check_slot(a.get("slot"), f"{where}.auth.slot")
        if a["scheme"] == "header" and not a.get("header"):
            raise ValueError(f"{where}.auth.header: required when scheme is header")
        auth = RouteAuth(scheme=a["scheme"], slot=a["slot"], header=a.get("header", ""))
    scheme = raw.get("scheme", "https")
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"{where}.scheme: must be https or http")
    port = raw.get("port", DEFAULT_PORTS[scheme])
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise ValueError(f"{where}.port: must be a port number 1-65535")
    try:
        host = route_pattern(raw["host"])
    except ValueError as e:
        raise ValueError(f"{where}.host: {e}") from None
    route = Route(
        host=host,
        paths=tuple(raw.get("paths", ())),
        methods=tuple(m.upper() for m in raw.get("methods", ())),
        auth=auth,
        tls_passthrough=bool(raw.get("tls_passthrough", False)),
        source=_source(raw.get("source", "manifest"), f"{where}.source"),
        scheme=scheme,
        port=port,
        expires=_expires(raw.get("expires", 0), where),
    )
    if route.tls_passthrough and (route.auth or route.paths):
        raise ValueError(f"{where}: tls_passthrough excludes auth and paths")
    if scheme == "http" and (route.auth or route.tls_passthrough):
        raise ValueError(f"{where}.scheme: an http route carries no auth and no passthrough")
    return route
