"""The channel framing (images/guest/mux.py) between two `Mux` ends joined by a
socketpair, as QEMU joins the guest's port and the host socket. Unix sockets only."""

from __future__ import annotations

import socket
import threading

from bot_bottle.images.guest.mux import (
    CHUNK,
    DATA,
    EOF,
    HEADER,
    HOST_FIRST,
    OPEN,
    SERVICE_PORT,
    Mux,
)


def _pair_of_muxes(
    opener: dict[int, socket.socket],
) -> tuple[Mux, list[bytes]]:
    g, h = socket.socketpair()
    written: list[bytes] = []

    def guest_write(b: bytes) -> int:
        written.append(b)
        return g.send(b)

    guest = Mux(g.recv, guest_write)
    host = Mux(h.recv, h.send, lambda port: opener.pop(port, None), first=HOST_FIRST)
    for m in (guest, host):
        threading.Thread(target=m.serve, daemon=True).start()
    return guest, written


def test_bytes_cross_both_ways_in_small_frames() -> None:
    sidecar_end, host_end = socket.socketpair()
    guest, written = _pair_of_muxes({3128: host_end})
    agent, agent_end = socket.socketpair()
    guest.add(agent_end, 3128)
    payload = bytes(range(256)) * 64  # 16 KiB: more than one frame
    agent.sendall(payload)
    got = b""
    sidecar_end.settimeout(5)
    while len(got) < len(payload):
        got += sidecar_end.recv(65536)
    assert got == payload
    sidecar_end.sendall(b"answer")
    agent.settimeout(5)
    assert agent.recv(100) == b"answer"
    frames = [w for w in written if HEADER.unpack(w[: HEADER.size])[1] == DATA]
    assert frames and all(len(w) <= HEADER.size + CHUNK for w in frames)


def test_eof_is_passed_on() -> None:
    sidecar_end, host_end = socket.socketpair()
    guest, _ = _pair_of_muxes({3128: host_end})
    agent, agent_end = socket.socketpair()
    guest.add(agent_end, 3128)
    agent.shutdown(socket.SHUT_WR)
    sidecar_end.settimeout(5)
    assert sidecar_end.recv(10) == b""  # the host side saw the agent's EOF


def test_a_port_the_host_does_not_map_is_closed() -> None:
    guest, _ = _pair_of_muxes({})
    agent, agent_end = socket.socketpair()
    guest.add(agent_end, 22)
    agent.settimeout(5)
    assert agent.recv(10) == b""


def test_a_malformed_open_maps_to_nothing() -> None:
    asked: list[int] = []
    g, h = socket.socketpair()
    host = Mux(h.recv, h.send, lambda port: asked.append(port) or None, first=HOST_FIRST)
    threading.Thread(target=host.serve, daemon=True).start()
    g.sendall(HEADER.pack(1, 1, 6) + b"22; rm" + HEADER.pack(2, 1, 4) + b"3128")
    g.settimeout(5)
    got = b""
    while len(got) < 2 * HEADER.size:
        got += g.recv(100)
    assert asked == [-1, 3128]  # the bad one refused, the channel still serving


def _raw_host() -> tuple[socket.socket, Mux, list[int]]:
    """A host `Mux` served on one end of a socketpair; the test is the guest."""
    asked: list[int] = []
    g, h = socket.socketpair()
    host = Mux(h.recv, h.send, lambda port: asked.append(port) or None, first=HOST_FIRST)
    threading.Thread(target=host.serve, daemon=True).start()
    g.settimeout(5)
    return g, host, asked


def _frame(g: socket.socket) -> tuple[int, int, bytes]:
    head = b""
    while len(head) < HEADER.size:
        head += g.recv(HEADER.size - len(head))
    sid, kind, length = HEADER.unpack(head)
    body = b""
    while len(body) < length:
        body += g.recv(length - len(body))
    return sid, kind, body


def test_a_stream_the_host_opens_cannot_be_taken_over_by_the_guest() -> None:
    """The host opens `bot-bottle exec`'s stream; the guest answers on it, and an OPEN
    of its own with that stream's id (or any in the host's range) changes nothing."""
    g, host, asked = _raw_host()
    client, exec_end = socket.socketpair()
    host.add(exec_end, SERVICE_PORT)
    sid, kind, body = _frame(g)
    assert (kind, body) == (OPEN, str(SERVICE_PORT).encode())
    assert sid >= HOST_FIRST
    g.sendall(HEADER.pack(sid, OPEN, 4) + b"3128" + HEADER.pack(sid + 1, OPEN, 4) + b"3128")
    g.sendall(HEADER.pack(sid, DATA, 6) + b"answer")
    client.settimeout(5)
    assert client.recv(100) == b"answer"
    assert asked == []  # no sidecar was asked for: the guest's OPENs were ignored


def test_the_guest_cannot_open_the_service_port_on_the_host() -> None:
    g, _host, asked = _raw_host()
    g.sendall(HEADER.pack(1, OPEN, 1) + b"0")
    assert _frame(g) == (1, EOF, b"")
    assert asked == [0]  # the host's opener maps only sidecar ports, never this one


def test_the_guest_end_starts_its_service_for_a_stream_the_host_opens() -> None:
    g, h = socket.socketpair()
    service, service_end = socket.socketpair()
    started: list[int] = []

    def start(port: int) -> socket.socket | None:
        started.append(port)
        return service_end

    guest = Mux(g.recv, g.send, start)
    host = Mux(h.recv, h.send, lambda port: None, first=HOST_FIRST)
    for m in (guest, host):
        threading.Thread(target=m.serve, daemon=True).start()
    client, exec_end = socket.socketpair()
    host.add(exec_end, SERVICE_PORT)
    client.sendall(b"request")
    service.settimeout(5)
    assert service.recv(100) == b"request"
    service.sendall(b"reply")
    client.settimeout(5)
    assert client.recv(100) == b"reply"
    assert started == [SERVICE_PORT]
