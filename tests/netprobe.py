"""Shared pieces for escape tests, built so that no test ever targets an address off
this machine: "can the bottle get out?" is asked of host services on this machine's own
addresses (which record whatever reaches them) and of the bottle's routing table.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

# Run inside a bottle with python3: prints the routes that could carry traffic beyond
# loopback and the bottle's own internal subnet (any default route, with its IPv4
# gateway as the last word), or "none".
DEFAULT_ROUTES = r"""
import socket, struct
found = []
for line in open("/proc/net/route").read().splitlines()[1:]:
    f = line.split()
    if f[0] != "lo" and f[1] == "00000000":
        gw = socket.inet_ntoa(struct.pack("<I", int(f[2], 16)))
        found.append("v4 default via " + f[0] + " " + gw)
for line in open("/proc/net/ipv6_route").read().splitlines():
    f = line.split()
    if f[-1] != "lo" and f[0] == "0" * 32 and f[1] == "00":
        found.append("v6 default via " + f[-1])
print(",".join(found) or "none")
"""


def host_address() -> str:
    """A non-loopback address of this host (where its services listen). A UDP connect
    only picks the source address; it sends nothing."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.254", 9))
            return str(s.getsockname()[0])
        except OSError:
            return "127.0.0.1"


@dataclass
class HostServices:
    """A TCP and a UDP service on all of this host's addresses, on one port number,
    recording who reached them (a developer's database and DNS server, say)."""

    port: int
    tcp_peers: list[str] = field(default_factory=list)
    udp_peers: list[str] = field(default_factory=list)


@contextmanager
def host_services() -> Iterator[HostServices]:
    tcp = socket.create_server(("0.0.0.0", 0))
    port = tcp.getsockname()[1]
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("0.0.0.0", port))
    svc = HostServices(port)
    stop = threading.Event()

    def serve_tcp() -> None:
        tcp.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, peer = tcp.accept()
            except OSError:
                continue
            svc.tcp_peers.append(peer[0])
            conn.close()

    def serve_udp() -> None:
        udp.settimeout(0.2)
        while not stop.is_set():
            try:
                _, peer = udp.recvfrom(2048)
            except OSError:
                continue
            svc.udp_peers.append(peer[0])

    threads = [threading.Thread(target=f, daemon=True) for f in (serve_tcp, serve_udp)]
    for t in threads:
        t.start()
    try:
        yield svc
    finally:
        stop.set()
        for t in threads:
            t.join()
        tcp.close()
        udp.close()
