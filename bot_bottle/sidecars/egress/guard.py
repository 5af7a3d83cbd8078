"""Connection-level rules, as a second mitmproxy addon next to `EgressAddon`: who may
connect, which protocols may run on a connection, and an audit line for connections
mitmproxy refused before any request hook saw them.

Added after `EgressAddon`, so for a CONNECT its hook has already run (and audited a
denial or a passthrough tunnel) when this one's does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mitmproxy import http
from mitmproxy.proxy import layer

from bot_bottle.policy.decision import Decision
from bot_bottle.policy.tunnel import decide_protocol
from bot_bottle.sidecars.egress.layers import Refused, position_of, protocol_of
from bot_bottle.sidecars.egress.relay import HandoffAdmission

if TYPE_CHECKING:
    from mitmproxy import connection, tcp, udp

DenyConnection = Callable[[str, Decision], None]
AUDITED = "bb.audited"  # flow metadata: EgressAddon has audited this flow


class ConnectionGuard:
    """Refuses connections and protocols the policy cannot inspect; audits each refusal."""

    def __init__(self, deny: DenyConnection, admission: HandoffAdmission | None = None) -> None:
        # `deny` writes one audit line for a refused connection (host, decision).
        self.deny = deny
        # Set when the agent reaches the proxy through a Unix-socket relay: then the
        # loopback TCP listener admits that relay's connections and nothing else.
        self.admission = admission
        self._targets: dict[str, str] = {}
        # Clients with at least one audit line; the others get one when they leave.
        self._decided: set[str] = set()

    def client_connected(self, client: connection.Client) -> None:
        """The TCP listener is on loopback, where every local user can reach it; only the
        bottle's own relay (mode-0600 Unix socket, same process) may use it."""
        if self.admission is None or self.admission.admit(client.peername):
            return
        client.error = "bot-bottle egress: not the bottle's socket relay"
        self._decided.add(client.id)
        self.deny(
            f"{client.peername}",
            Decision.denied("local-client", "connection not through the bottle's socket"),
        )

    def http_connect(self, flow: http.HTTPFlow) -> None:
        self._targets[flow.client_conn.id] = flow.request.host
        self._note(flow)

    def _note(self, flow: http.HTTPFlow) -> None:
        """Remember clients that have an audited flow (EgressAddon's hooks ran first)."""
        if flow.metadata.get(AUDITED):
            self._decided.add(flow.client_conn.id)

    requestheaders = request = response = error = _note

    def next_layer(self, nextlayer: layer.NextLayer) -> None:
        """Runs after mitmproxy's own choice: keep it only where the policy inspects what it
        carries (DNS, raw TCP/UDP, QUIC and plaintext tunnels are refused)."""
        chosen = nextlayer.layer
        if chosen is None:  # mitmproxy wants more bytes before it decides
            return
        ctx = nextlayer.context
        # Constructing a layer appends it (and its children) to the context's stack, so
        # what came before the choice is the stack up to the chosen layer.
        stack = ctx.layers
        below = stack[: stack.index(chosen)] if chosen in stack else list(stack)
        d = decide_protocol(position_of(below), protocol_of(chosen))
        if d.allow:
            return
        del stack[len(below) :]
        nextlayer.layer = Refused(ctx)
        cid = ctx.client.id
        self._decided.add(cid)
        address = ctx.server.address
        self.deny(self._targets.get(cid, str(address[0]) if address else ""), d)

    def tcp_message(self, flow: tcp.TCPFlow | udp.UDPFlow) -> None:
        """Defence in depth: `next_layer` never lets an inspected raw TCP/UDP flow start
        (passthrough tunnels have no flow), and mitmproxy ignores `kill()` on a running
        one, so should one appear anyway, its bytes are blanked rather than relayed."""
        flow.messages[-1].content = b""

    udp_message = tcp_message

    def client_disconnected(self, client: connection.Client) -> None:
        """mitmproxy refuses some bytes itself, before or between our hooks (an HTTP/2
        frame h2 rejects, a request line it cannot parse, HTTP/1.1 chunked trailers, a
        failed TLS handshake): a connection that leaves no audit line otherwise gets one
        here, so that no refusal goes unrecorded."""
        target = self._targets.pop(client.id, "")
        if client.id in self._decided:
            self._decided.discard(client.id)
            return
        self.deny(
            target,
            Decision.denied(
                "protocol",
                "connection ended without a request the egress could complete (malformed "
                "or non-HTTP bytes, framing the proxy refuses, or a failed TLS handshake)",
            ),
        )
