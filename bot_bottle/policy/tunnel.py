"""Which protocol may run where on the proxy's connections.

The proxy engine can speak many protocols (raw TCP, DNS, UDP, QUIC, ...); bot-bottle
inspects only HTTP and WebSocket. So the agent may speak HTTP to the proxy, a CONNECT
tunnel must carry TLS (relayed undecrypted only on a `tls_passthrough` route whose SNI
matches), and inside that TLS only HTTP. Everything else is refused: a byte stream the
policy never parses is a channel it never sees.
"""

from __future__ import annotations

from typing import Literal

from bot_bottle.policy.decision import Decision

Position = Literal["proxy", "tunnel", "tls", "other"]
Protocol = Literal["http", "tls", "tcp", "udp", "dns", "quic", "other"]

_ALLOWED: dict[str, frozenset[str]] = {
    "proxy": frozenset({"http", "tls"}),  # plain proxy requests, or TLS to the proxy itself
    "tunnel": frozenset({"tls"}),  # what a CONNECT tunnel carries
    "tls": frozenset({"http"}),  # what that TLS carries
}

_WHERE = {
    "proxy": "on a connection to the proxy",
    "tunnel": "inside a CONNECT tunnel (only TLS is relayed)",
    "tls": "inside TLS in a CONNECT tunnel (only HTTP is relayed)",
    "other": "in an unexpected place",
}


def decide_protocol(position: Position, protocol: Protocol) -> Decision:
    """Allow `protocol` at `position` only where the policy inspects what it carries."""
    if protocol in _ALLOWED.get(position, frozenset()):
        return Decision.allowed("protocol")
    return Decision.denied("protocol", f"{protocol} traffic refused {_WHERE[position]}")
