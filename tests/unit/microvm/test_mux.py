"""The channel framing (images/guest/mux.py) between two `Mux` ends joined by a
socketpair, as QEMU joins the guest's port and the host socket. Unix sockets only."""

from __future__ import annotations

import socket
import threading

from bot_bottle.images.guest.mux import CHUNK, DATA, HEADER, Mux


def _pair_of_muxes(
    opener: dict[int, socket.socket],
) -> tuple[Mux, list[bytes]]:
    g, h = socket.socketpair()
    written: list[bytes] = []

    def guest_write(b: bytes) -> int:
        written.append(b)
        return g.send(b)

    guest = Mux(g.recv, guest_write)
    host = Mux(h.recv, h.send, lambda port: opener.pop(port, None))
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
    host = Mux(h.recv, h.send, lambda port: asked.append(port) or None)
    threading.Thread(target=host.serve, daemon=True).start()
    g.sendall(HEADER.pack(1, 1, 6) + b"22; rm" + HEADER.pack(2, 1, 4) + b"3128")
    g.settimeout(5)
    got = b""
    while len(got) < 2 * HEADER.size:
        got += g.recv(100)
    assert asked == [-1, 3128]  # the bad one refused, the channel still serving
