"""The channel framing (images/guest/mux.py) between two `Mux` ends joined by a
socketpair, as QEMU joins the guest's port and the host socket. Unix sockets only."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable

import pytest

from bot_bottle.images.guest import mux
from bot_bottle.images.guest.mux import (
    CHUNK,
    CLOSE,
    DATA,
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


# Flow control, limits and closing. `mux.X` is looked up in each test, so a name the
# framing lacks fails that test alone.


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    got = b""
    while len(got) < n:
        chunk = sock.recv(n - len(got))
        if not chunk:
            break
        got += chunk
    return got


def _frames_until(sock: socket.socket, want: Callable[[int, int, bytes], bool]) -> bool:
    """Reads frames from a raw channel end until `want(sid, kind, payload)`; False when
    the channel ends or goes quiet for 5 s first."""
    sock.settimeout(5)
    try:
        while head := _recv_exactly(sock, HEADER.size):
            sid, kind, length = HEADER.unpack(head)
            if want(sid, kind, _recv_exactly(sock, length)):
                return True
    except TimeoutError:
        pass
    return False


def _wait_for(check: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + 5
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _muxes(opener: dict[int, socket.socket], **limits: int) -> tuple[mux.Mux, mux.Mux]:
    g, h = socket.socketpair()
    guest = mux.Mux(g.recv, g.send, **limits)
    host = mux.Mux(
        h.recv, h.send, lambda port: opener.pop(port, None), **limits, first=mux.HOST_FIRST
    )
    for m in (guest, host):
        threading.Thread(target=m.serve, daemon=True).start()
    return guest, host


def _flood(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.sendall(b"z" * (8 << 20))  # far more than any socket buffer and window


@pytest.mark.parametrize("stuck", ["sidecar", "agent"])
def test_a_peer_that_never_reads_does_not_stall_another_stream(stuck: str) -> None:
    stuck_sidecar, stuck_host_end = socket.socketpair()
    live_sidecar, live_host_end = socket.socketpair()
    guest, _ = _muxes({3128: stuck_host_end, 9419: live_host_end})
    stuck_agent, stuck_agent_end = socket.socketpair()
    guest.add(stuck_agent_end, 3128)
    # Whoever floods, the other end of the stuck stream never reads.
    flooder = stuck_agent if stuck == "sidecar" else stuck_sidecar
    threading.Thread(target=_flood, args=(flooder,), daemon=True).start()
    time.sleep(0.5)  # let the flood fill every buffer on the way
    live_agent, live_agent_end = socket.socketpair()
    # On its own thread, as the forwarder's accept loop: it must not wait on the stuck one.
    threading.Thread(target=guest.add, args=(live_agent_end, 9419), daemon=True).start()
    live_agent.sendall(b"ping")
    live_sidecar.settimeout(5)
    assert _recv_exactly(live_sidecar, 4) == b"ping"
    live_sidecar.sendall(b"pong")
    live_agent.settimeout(5)
    assert _recv_exactly(live_agent, 4) == b"pong"


def test_a_guest_that_sends_beyond_its_window_is_cut_off() -> None:
    sidecar, host_end = socket.socketpair()  # a sidecar that never reads
    g, h = socket.socketpair()
    host = mux.Mux(
        h.recv, h.send, lambda port: host_end if port == 3128 else None, first=mux.HOST_FIRST
    )
    threading.Thread(target=host.serve, daemon=True).start()
    g.sendall(HEADER.pack(7, mux.OPEN, 4) + b"3128")
    block = b"x" * CHUNK
    frames = b"".join(HEADER.pack(7, mux.DATA, CHUNK) + block for _ in range(512))

    def hostile() -> None:  # 2 MiB, credit or not
        with contextlib.suppress(OSError):
            g.sendall(frames)

    threading.Thread(target=hostile, daemon=True).start()
    assert _frames_until(g, lambda sid, kind, _p: sid == 7 and kind == mux.CLOSE)
    sidecar.settimeout(5)
    got = 0
    while chunk := sidecar.recv(65536):  # the host closed its end of the stream
        got += len(chunk)
    assert got <= mux.WINDOW  # and never held more than the window for it
    assert _wait_for(lambda: host.open_streams == 0)


def test_opens_beyond_the_stream_limit_are_refused() -> None:
    ends: list[socket.socket] = []

    def opener(port: int) -> socket.socket:
        a, b = socket.socketpair()
        ends.append(a)
        return b

    g, h = socket.socketpair()
    host = mux.Mux(h.recv, h.send, opener, max_streams=4, first=mux.HOST_FIRST)
    threading.Thread(target=host.serve, daemon=True).start()
    g.sendall(b"".join(HEADER.pack(sid, mux.OPEN, 4) + b"3128" for sid in range(1, 6)))
    refused: list[int] = []

    def want(sid: int, kind: int, _p: bytes) -> bool:
        if kind in (mux.EOF, mux.CLOSE):
            refused.append(sid)
        return bool(refused)

    assert _frames_until(g, want)
    assert refused == [5]  # the first four were opened, not refused
    assert _wait_for(lambda: len(ends) == 4)  # each connected on its own thread
    assert host.open_streams == 4


def test_the_guest_refuses_connections_beyond_its_limit() -> None:
    sidecar, host_end = socket.socketpair()
    guest, _ = _muxes({3128: host_end}, max_streams=1)
    agent, agent_end = socket.socketpair()
    guest.add(agent_end, 3128)
    second, second_end = socket.socketpair()
    guest.add(second_end, 3128)
    second.settimeout(5)
    assert second.recv(10) == b""
    assert guest.open_streams == 1
    agent.sendall(b"still served")  # the first connection is untouched
    sidecar.settimeout(5)
    assert _recv_exactly(sidecar, 12) == b"still served"


def test_half_close_both_ways_frees_the_stream() -> None:
    sidecar, host_end = socket.socketpair()
    guest, host = _muxes({3128: host_end})
    agent, agent_end = socket.socketpair()
    guest.add(agent_end, 3128)
    agent.sendall(b"request")
    agent.shutdown(socket.SHUT_WR)
    sidecar.settimeout(5)
    assert _recv_exactly(sidecar, 100) == b"request"  # then EOF
    sidecar.sendall(b"answer after the agent's EOF")
    agent.settimeout(5)
    assert agent.recv(100) == b"answer after the agent's EOF"
    assert guest.open_streams == 1 and host.open_streams == 1  # one direction is open
    sidecar.shutdown(socket.SHUT_WR)
    assert agent.recv(100) == b""
    assert _wait_for(lambda: guest.open_streams == 0 and host.open_streams == 0)


def test_a_reset_is_carried_as_a_close() -> None:
    sidecar, host_end = socket.socketpair()
    guest, host = _muxes({3128: host_end})
    agent, agent_end = socket.socketpair()
    guest.add(agent_end, 3128)
    sidecar.sendall(b"unread")
    agent.settimeout(5)
    assert agent.recv(6, socket.MSG_PEEK) == b"unread"  # arrived, and left unread
    agent.close()  # with unread bytes: the forwarder's end gets ECONNRESET
    sidecar.settimeout(5)
    assert sidecar.recv(100) == b""
    # Both directions are closed, not only the agent's: the sidecar cannot write on.
    with pytest.raises(OSError):
        for _ in range(100):
            sidecar.send(b"more")
            time.sleep(0.01)
    assert _wait_for(lambda: host.open_streams == 0 and guest.open_streams == 0)


def test_the_channel_ending_closes_every_stream() -> None:
    g, h = socket.socketpair()
    guest = mux.Mux(g.recv, g.send)
    threading.Thread(target=guest.serve, daemon=True).start()
    agent, agent_end = socket.socketpair()
    guest.add(agent_end, 3128)
    h.close()  # QEMU or the host went away
    agent.settimeout(5)
    assert agent.recv(10) == b""  # not left hanging
    assert _wait_for(lambda: guest.open_streams == 0)


def test_many_streams_keep_their_bytes_in_order_under_a_small_window() -> None:
    n, size = 8, 512 << 10
    pairs = [socket.socketpair() for _ in range(n)]
    guest, host = _muxes({4000 + i: pairs[i][1] for i in range(n)}, window=16384)
    results: dict[str, bytes] = {}
    payloads = [os.urandom(size) for _ in range(2 * n)]

    def pattern(tag: int) -> bytes:
        return payloads[tag]

    def side(name: str, sock: socket.socket, out: bytes) -> None:
        sock.settimeout(20)
        threading.Thread(target=sock.sendall, args=(out,), daemon=True).start()
        got = bytearray()
        while len(got) < size:
            time.sleep(0.001 * (len(got) % 3))  # a reader that lags now and then
            got += sock.recv(7000)
        results[name] = bytes(got)

    threads = []
    for i in range(n):
        agent, agent_end = socket.socketpair()
        guest.add(agent_end, 4000 + i)
        for name, sock, tag in ((f"a{i}", agent, 2 * i), (f"s{i}", pairs[i][0], 2 * i + 1)):
            t = threading.Thread(target=side, args=(name, sock, pattern(tag)))
            t.start()
            threads.append(t)
    for t in threads:
        t.join(60)
    for i in range(n):
        assert results[f"s{i}"] == pattern(2 * i)  # what the agent sent, in order
        assert results[f"a{i}"] == pattern(2 * i + 1)
    assert host.open_streams == n  # nobody closed: all still open both ways


def test_a_guest_that_floods_refusals_without_reading_loses_the_channel() -> None:
    g, h = socket.socketpair()
    h.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    host = mux.Mux(h.recv, h.send, lambda port: None, max_streams=4, first=mux.HOST_FIRST)
    serving = threading.Thread(target=host.serve, daemon=True)
    serving.start()
    opens = b"".join(HEADER.pack(sid, mux.OPEN, 2) + b"22" for sid in range(1, 200_001))

    def hostile() -> None:  # each OPEN is refused with a frame the guest never reads
        with contextlib.suppress(OSError):
            g.sendall(opens)

    threading.Thread(target=hostile, daemon=True).start()
    serving.join(20)
    assert not serving.is_alive()  # the host gave up instead of queueing replies forever


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
    assert _frame(g) == (1, CLOSE, b"")  # refused
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
