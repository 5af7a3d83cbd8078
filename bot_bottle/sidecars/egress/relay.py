"""A Unix socket that relays byte-for-byte to the proxy's loopback TCP port.

The namespace backend binds this socket into the sandbox, which has no network of
its own: the socket is the sandbox's only way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path


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


async def start_unix_relay(path: Path, host: str, port: int) -> asyncio.AbstractServer:
    """Listen on `path` (mode 0600) and forward each connection to `host:port`."""

    async def handle(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        try:
            ur, uw = await asyncio.open_connection(host, port)
        except OSError:
            cw.close()
            return
        try:
            await asyncio.gather(_pipe(cr, uw), _pipe(ur, cw))
        finally:
            uw.close()
            cw.close()

    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    old = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(handle, path=str(path))
    finally:
        os.umask(old)
    return server
