"""A Unix socket that relays byte-for-byte to the proxy's loopback TCP port.

The namespace backend binds this socket into the sandbox, which has no network of
its own: the socket is the sandbox's only way out.

The proxy's TCP port is on loopback, which every local user can reach; the socket's
mode (0600) is the access control. So the relay tells the proxy which connections are
its own (`RelayAdmission`) and the proxy refuses every other one. The relay binds its
outgoing socket to a port *before* registering it and connecting: while it holds the
port, no other socket (of any user) can connect from it, and each registration admits
exactly one connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from pathlib import Path

# Accept queues of the relay's socket and of the proxy's TCP listener (asyncio's default is
# 100). A burst past it makes a Unix connect block and drops a TCP SYN, which the client
# retries only after 1, 3, 7, 15, 31 ... s: under 200 concurrent new connections some
# requests waited over 30 s. The kernel caps it at net.core.somaxconn.
BACKLOG = 4096


class RelayAdmission:
    """Source ports of the relay's connections that the proxy has not yet accepted."""

    def __init__(self, host: str) -> None:
        self.host = host
        self._expected: set[int] = set()

    def expect(self, port: int) -> None:
        self._expected.add(port)

    def forget(self, port: int) -> None:
        self._expected.discard(port)

    def admit(self, peer: object) -> bool:
        """True once for each expected (host, port) peer; everything else is refused."""
        if not isinstance(peer, tuple) or len(peer) < 2 or peer[0] != self.host:
            return False
        port = peer[1]
        if port not in self._expected:
            return False
        self._expected.discard(port)
        return True


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.write_eof()


async def _dial(host: str, port: int, admission: RelayAdmission | None) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.bind((host, 0))
        local = int(sock.getsockname()[1])
        if admission is not None:
            admission.expect(local)
        try:
            await asyncio.get_running_loop().sock_connect(sock, (host, port))
        except OSError:
            if admission is not None:
                admission.forget(local)
            raise
    except OSError:
        sock.close()
        raise
    return sock


def widen_backlog(servers: list[asyncio.AbstractServer]) -> None:
    """Raise the accept queue of servers already listening (mitmproxy starts its listener
    with asyncio's default of 100 and has no option for it); listen() again on a socket
    that listens only changes its backlog."""
    for server in servers:
        for tsock in getattr(server, "sockets", ()):
            with socket.socket(fileno=os.dup(tsock.fileno())) as s:
                s.listen(BACKLOG)


async def start_unix_relay(
    path: Path, host: str, port: int, admission: RelayAdmission | None = None
) -> asyncio.AbstractServer:
    """Listen on `path` (mode 0600) and forward each connection to `host:port`, announcing
    each outgoing connection to `admission` first."""

    async def handle(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        try:
            sock = await _dial(host, port, admission)
            local = int(sock.getsockname()[1])
            ur, uw = await asyncio.open_connection(sock=sock)
        except OSError:
            cw.close()
            return
        try:
            await asyncio.gather(_pipe(cr, uw), _pipe(ur, cw))
        finally:
            if admission is not None:
                admission.forget(local)
            uw.close()
            cw.close()

    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    old = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(handle, path=str(path), backlog=BACKLOG)
    finally:
        os.umask(old)
    return server
