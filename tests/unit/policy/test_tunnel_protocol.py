"""Only protocols the policy inspects run on the proxy's connections."""

from __future__ import annotations

import pytest

from bot_bottle.policy.tunnel import Position, Protocol, decide_protocol

ALLOWED = {("proxy", "http"), ("proxy", "tls"), ("tunnel", "tls"), ("tls", "http")}
POSITIONS: list[Position] = ["proxy", "tunnel", "tls", "other"]
PROTOCOLS: list[Protocol] = ["http", "tls", "tcp", "udp", "dns", "quic", "other"]


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_only_inspected_protocols(position: Position, protocol: Protocol) -> None:
    d = decide_protocol(position, protocol)
    assert d.allow is ((position, protocol) in ALLOWED)
    if not d.allow:
        assert d.rule == "protocol" and protocol in d.reason
