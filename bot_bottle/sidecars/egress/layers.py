"""mitmproxy protocol layers the egress adds: a refusal, and WebSocket control frames
shown to the addon.

mitmproxy relays WebSocket ping, pong and close frames without any hook, and a killed
WebSocket flow keeps its connection open (mitmproxy issue 4711). `InspectedWebsocketLayer`
turns each control frame the agent sends into a `websocket_message` event (opcode PING,
PONG or CLOSE) before it is relayed, and closes both sides once the addon drops a message
or kills the flow.
"""

from __future__ import annotations

import struct
from collections.abc import Generator
from typing import Any

import wsproto.events
from mitmproxy import flow as mflow
from mitmproxy import websocket
from mitmproxy.proxy import commands, events, layer, layers
from mitmproxy.proxy.layers import modes
from mitmproxy.proxy.layers import websocket as ws_layers
from mitmproxy.proxy.layers.http import HttpStream
from wsproto.connection import ConnectionState
from wsproto.frame_protocol import CloseReason, Opcode

from bot_bottle.policy.tunnel import Position, Protocol

Commands = Generator[commands.Command, Any, None]

_OPEN = (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING)


def protocol_of(chosen: layer.Layer) -> Protocol:
    """What the layer mitmproxy picked would speak."""
    if isinstance(chosen, layers.HttpLayer):
        return "http"
    if isinstance(chosen, layers.ServerTLSLayer | layers.ClientTLSLayer):
        return "tls"
    if isinstance(chosen, layers.DNSLayer):
        return "dns"
    if isinstance(chosen, layers.TCPLayer):
        return "tcp"
    if isinstance(chosen, layers.UDPLayer):
        return "udp"
    if isinstance(chosen, layers.ServerQuicLayer | layers.ClientQuicLayer | layers.RawQuicLayer):
        return "quic"
    return "other"


def position_of(stack: list[layer.Layer]) -> Position:
    """Where on the connection the next layer starts: right after the proxy mode, after a
    CONNECT (the HTTP stream that answered it), or after the tunnel's TLS."""
    if not stack:
        return "other"
    last = stack[-1]
    if len(stack) == 1 and isinstance(last, modes.HttpProxy):
        return "proxy"
    if isinstance(last, HttpStream):  # the stream that answered the CONNECT
        return "tunnel"
    if isinstance(last, layers.ClientTLSLayer):
        return "tls"
    return "other"


class Refused(layer.Layer):
    """Closes the connection it is put on; whatever the peer sends is dropped."""

    def _handle_event(self, event: events.Event) -> Commands:
        if isinstance(event, events.Start):
            if self.context.server.connected:
                yield commands.CloseConnection(self.context.server)
            yield commands.CloseConnection(self.context.client)


def _killed(f: mflow.Flow) -> bool:
    return bool(f.error and f.error.msg == mflow.Error.KILLED_MESSAGE)


def _control(ev: wsproto.events.Event) -> tuple[Opcode, bytes] | None:
    if isinstance(ev, wsproto.events.Ping):
        return Opcode.PING, bytes(ev.payload)
    if isinstance(ev, wsproto.events.Pong):
        return Opcode.PONG, bytes(ev.payload)
    if isinstance(ev, wsproto.events.CloseConnection):
        return Opcode.CLOSE, struct.pack("!H", int(ev.code)) + (ev.reason or "").encode()
    return None


def _already_fed(data: bytes | None) -> None:
    """Stands in for `receive_data` while mitmproxy relays events we pre-read."""


class InspectedWebsocketLayer(ws_layers.WebsocketLayer):
    """mitmproxy's WebSocket layer, with the agent's control frames shown to addons and a
    dropped message or killed flow closing the connection."""

    def relay_messages(self, event: events.Event) -> Commands:
        assert self.flow.websocket is not None
        if isinstance(event, events.DataReceived) and event.connection == self.context.client:
            self.client_ws.receive_data(event.data)
            pending = list(self.client_ws.events())
            for ev in pending:
                control = _control(ev)
                if control is None:
                    continue
                msg = websocket.WebSocketMessage(control[0], True, control[1])
                self.flow.websocket.messages.append(msg)
                yield ws_layers.WebsocketMessageHook(self.flow)
                if msg.dropped or _killed(self.flow):
                    yield from self._close_both()
                    return
            self.client_ws._events.extend(pending)
            self.client_ws.receive_data = _already_fed
            try:
                yield from super().relay_messages(event)
            finally:
                del self.client_ws.receive_data
        else:
            yield from super().relay_messages(event)
        if _killed(self.flow) and self._handle_event != self.done:
            yield from self._close_both()

    def _close_both(self) -> Commands:
        """Policy violation (1008) to both peers, without the offending payload."""
        for ws in (self.server_ws, self.client_ws):
            if ws.state in _OPEN:
                yield ws.send2(wsproto.events.CloseConnection(code=CloseReason.POLICY_VIOLATION))
            yield commands.CloseConnection(ws.conn)
        self.flow.live = False
        self._handle_event = self.done


def install() -> None:
    """Make mitmproxy's HTTP layer hand upgraded WebSocket connections to our layer."""
    ws_layers.WebsocketLayer = InspectedWebsocketLayer  # type: ignore[misc]
