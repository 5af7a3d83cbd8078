"""The bottle's Unix socket, served by the proxy's own connection handler.

The namespace backend binds this socket into the sandbox, which has no network of its
own: the socket is the sandbox's only way out. Each connection accepted on it is handed
to mitmproxy as it is. (It used to be copied to mitmproxy's loopback TCP port by a relay
in the same event loop: that second hop took a fifth of the sidecar's CPU on a bulk
download and added one more accept queue for a burst to overflow.)

mitmproxy has no Unix listener, so it still listens on a loopback TCP port, which every
local user can reach; the socket's mode (0600) is the access control. So the proxy
admits only connections handed over here (`HandoffAdmission`): they carry `UNIX_PEER` as
their peer address, port 0, which no TCP connection can have.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

# Accept queues of the socket and of the proxy's TCP listener (asyncio's default is 100).
# A burst past it makes a Unix connect block and drops a TCP SYN, which the client
# retries only after 1, 3, 7, 15, 31 ... s: under 200 concurrent new connections some
# requests waited over 30 s. The kernel caps it at net.core.somaxconn.
BACKLOG = 4096

# The peer address of a connection handed over from the Unix socket. mitmproxy and its
# addons read a client's peer as an (IP, port) pair; port 0 marks it as ours.
UNIX_PEER = ("127.0.0.1", 0)

StreamHandler = Callable[[asyncio.StreamReader, Any], Awaitable[None]]


class HandoffAdmission:
    """Which clients the proxy admits: those handed over from the bottle's Unix socket."""

    def admit(self, peer: object) -> bool:
        return isinstance(peer, tuple) and tuple(peer[:2]) == UNIX_PEER


class _HandedOver:
    """A Unix connection's writer, presented to mitmproxy as a TCP client's: peer
    `UNIX_PEER`, local address the proxy's listener (TLS certificates name it)."""

    def __init__(self, writer: asyncio.StreamWriter, sockname: tuple[str, int]) -> None:
        self._writer = writer
        self._sockname = sockname

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return UNIX_PEER
        if name == "sockname":
            return self._sockname
        return self._writer.get_extra_info(name, default)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._writer, name)


def widen_backlog(servers: list[asyncio.AbstractServer]) -> None:
    """Raise the accept queue of servers already listening (mitmproxy starts its listener
    with asyncio's default of 100 and has no option for it); listen() again on a socket
    that listens only changes its backlog."""
    for server in servers:
        for tsock in getattr(server, "sockets", ()):
            with socket.socket(fileno=os.dup(tsock.fileno())) as s:
                s.listen(BACKLOG)


async def start_unix_relay(
    path: Path, handle: StreamHandler, sockname: tuple[str, int]
) -> asyncio.AbstractServer:
    """Listen on `path` (mode 0600) and hand each connection to `handle` (mitmproxy's
    `ServerInstance.handle_stream`), as if it came to `sockname` from `UNIX_PEER`."""

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handle(reader, _HandedOver(writer, sockname))
        finally:
            writer.close()

    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    old = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(on_connect, path=str(path), backlog=BACKLOG)
    finally:
        os.umask(old)
    return server
