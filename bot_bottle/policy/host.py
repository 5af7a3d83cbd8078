"""What a host is: the one check shared by the manifest, the plan's routes file and the
egress route table, so none of them accepts a host another refuses (a route the
manifest took but the egress dropped once failed only at run time, as a 403).

`normalize_host` reads a request's host; `route_pattern` a route's host pattern
(an exact host, an IP address, or `*.` and a host name).
"""

from __future__ import annotations

import ipaddress
import re

_LABEL_RE = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\Z")
_NUMERIC_TAIL_RE = re.compile(r"(?:[0-9]+|0x[0-9a-f]*)\Z")
EXPECTED = (
    "expected a host name like `api.github.com` or `*.github.com`, or an IP address "
    "(no scheme, port, path or wildcard in the middle)"
)


def normalize_host(host: str) -> str:
    """Canonical form of a request host: lowercase, one trailing dot removed, IDN as punycode.

    IP literals come back canonical (IPv6 bracketed). Raises ValueError for anything
    that is not a plain host name or IP literal.
    """
    if not isinstance(host, str):
        raise ValueError("host must be a string")
    if host.startswith("["):
        return _bracketed_ipv6(host)
    if ":" in host:
        # Either a port or an unbracketed IPv6 literal; for "1::2:443" the two readings
        # differ, so neither is guessed. Callers pass the host without its port.
        raise ValueError(f"host {host!r} has a port or an unbracketed IPv6 address")
    h = host.lower()
    if h.endswith("."):
        h = h[:-1]
    if not h:
        raise ValueError("host is empty")
    if not h.isascii():
        h = _idna(h)
    if len(h) > 253:
        raise ValueError("host is longer than 253 characters")
    labels = h.split(".")
    for label in labels:
        if not label:
            raise ValueError(f"host {host!r} has an empty label")
        if not _LABEL_RE.match(label):
            raise ValueError(f"host {host!r} has a character not allowed in a host name")
    if _NUMERIC_TAIL_RE.match(labels[-1]):
        # Resolvers read "127.1", "0x7f.0.0.1" and "2130706433" as IPv4 addresses; only
        # the canonical dotted quad is accepted so a route cannot be matched by an alias.
        try:
            canonical = str(ipaddress.IPv4Address(h))
        except ValueError:
            canonical = ""
        if canonical != h:
            raise ValueError(f"host {host!r} is a non-canonical IPv4 address")
    return h


def _bracketed_ipv6(host: str) -> str:
    if not host.endswith("]") or host.count("[") != 1 or host.count("]") != 1:
        raise ValueError(f"host {host!r} misuses brackets (a port or junk after `]`?)")
    try:
        addr = ipaddress.IPv6Address(host[1:-1])
    except ValueError as e:
        raise ValueError(f"host {host!r} is not a bracketed IPv6 address") from e
    if addr.scope_id is not None:
        raise ValueError(f"host {host!r} carries a zone id")
    return f"[{addr.compressed}]"


def _idna(h: str) -> str:
    try:
        ascii_host = h.encode("idna").decode("ascii")
        back = ascii_host.encode("ascii").decode("idna")
    except UnicodeError as e:
        raise ValueError(f"host {h!r} is not a valid internationalized name") from e
    # IDNA nameprep folds look-alikes (fullwidth letters, "ß") into other names; a host
    # that does not survive the round trip would name a different site than it shows.
    if back != h:
        raise ValueError(f"host {h!r} does not round-trip through IDNA")
    return ascii_host


def route_pattern(pattern: str) -> str:
    """The canonical form of a route's host pattern: lowercase, no trailing dot, IDN as
    punycode, an IP address canonical (IPv6 without brackets), `*.` only in front of
    a host name. Raises ValueError naming what is wrong."""
    if not isinstance(pattern, str):
        raise ValueError("a route host must be text")
    h = pattern.strip()
    if h.startswith("*."):
        rest = normalize_host(h[2:])
        if rest.startswith("[") or is_ip(rest):
            raise ValueError(f"host {pattern!r}: a wildcard needs a host name, not an address")
        return "*." + rest
    if ":" in h:
        # The manifest writes IPv6 route hosts without brackets; either form is read.
        return normalize_host(h if h.startswith("[") else f"[{h}]")[1:-1]
    return normalize_host(h)


def is_ip(host: str) -> bool:
    """Whether `host` (unbracketed) is an IP literal."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
