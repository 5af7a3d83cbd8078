"""SSRF address checks: may the egress sidecar connect to this resolved address?

An allowed host name can still resolve (or be rebound) to the sidecar's own
network, the host, or a cloud metadata service. The check runs on the address
actually dialled, after DNS, so a name cannot smuggle a private target past it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from bot_bottle.policy.decision import Decision

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "169.254.170.2")
)

# Listed explicitly (rather than trusting `is_global` alone) so the reason names the
# range and the answer does not change with the Python patch release.
_DENIED: tuple[tuple[Network, str], ...] = tuple(
    (ipaddress.ip_network(cidr), label)
    for cidr, label in (
        ("0.0.0.0/8", "the unspecified/'this network' range"),
        ("10.0.0.0/8", "a private (RFC 1918) address"),
        ("100.64.0.0/10", "a carrier-grade NAT (RFC 6598) address"),
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local address"),
        ("172.16.0.0/12", "a private (RFC 1918) address"),
        ("192.0.0.0/24", "an IETF protocol assignment"),
        ("192.0.2.0/24", "a documentation address"),
        ("192.88.99.0/24", "a deprecated 6to4 relay address"),
        ("192.168.0.0/16", "a private (RFC 1918) address"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", "a reserved address"),
        ("255.255.255.255/32", "the broadcast address"),
        ("::/128", "the unspecified address"),
        ("::1/128", "a loopback address"),
        ("::/96", "an IPv4-compatible IPv6 address"),
        ("::ffff:0:0/96", "an IPv4-mapped IPv6 address"),
        ("64:ff9b:1::/48", "a local-use NAT64 address"),
        ("100::/64", "a discard-only address"),
        ("2001:db8::/32", "a documentation address"),
        ("3fff::/20", "a documentation address"),
        ("fc00::/7", "a unique-local address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a deprecated site-local address"),
        ("ff00::/8", "a multicast address"),
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
_TEREDO = ipaddress.ip_network("2001::/32")


def check_address(ip: str, allowlist: Sequence[str] = ()) -> Decision:
    """Allow `ip` unless it is internal, special-purpose or metadata and not allowlisted.

    `allowlist` holds CIDRs from `ssrf_ip_allowlist`; unparsable entries are ignored
    (they were validated when the policy loaded). Never raises: garbage is denied.
    """
    try:
        return _check(ip, allowlist)
    except Exception as e:  # a buggy check must fail closed
        return Decision.denied("ssrf", f"internal SSRF check error: {type(e).__name__}")


def _check(ip: str, allowlist: Sequence[str]) -> Decision:
    text = ip.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        addr: Address = ipaddress.ip_address(text)
    except ValueError:
        return Decision.denied("ssrf", f"{ip!r} is not an IP address")
    if isinstance(addr, ipaddress.IPv6Address) and addr.scope_id is not None:
        # A zone id pins the address to a local interface: never a public upstream.
        return Decision.denied("ssrf", f"{ip} carries an IPv6 zone id")
    embedded = _embedded_v4(addr)
    if _allowlisted(addr, embedded, allowlist):
        return Decision.allowed("ssrf")
    hint = f"add `{addr}/{addr.max_prefixlen}` to ssrf_ip_allowlist of bottles.<name>.egress"
    for candidate in (addr, embedded):
        if candidate is not None and candidate in _METADATA:
            return Decision.denied("ssrf", f"{ip} is a cloud metadata address", hint)
    if embedded is not None:
        why = _denied_label(embedded)
        if why:
            return Decision.denied("ssrf", f"{ip} embeds {embedded}, {why}", hint)
    why = _denied_label(addr)
    if why:
        return Decision.denied("ssrf", f"{ip} is {why}", hint)
    if embedded is None and not addr.is_global:
        return Decision.denied("ssrf", f"{ip} is not a globally routable address", hint)
    return Decision.allowed("ssrf")


def _embedded_v4(addr: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 transition address reaches, if it has one."""
    if not isinstance(addr, ipaddress.IPv6Address):
        return None
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr in _NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    if addr in _SIX_TO_FOUR:
        return addr.sixtofour
    if addr in _TEREDO and addr.teredo is not None:
        server, client = addr.teredo
        # Either end of a Teredo address may be the private target; report the worse.
        return client if _denied_label(client) else server
    return None


def _denied_label(addr: Address) -> str:
    for net, label in _DENIED:
        if addr.version == net.version and addr in net:
            return label
    return ""


def _allowlisted(addr: Address, embedded: Address | None, allowlist: Sequence[str]) -> bool:
    for cidr in allowlist:
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except (ValueError, TypeError):
            continue
        for candidate in (addr, embedded):
            if candidate is not None and candidate.version == net.version and candidate in net:
                return True
    return False
