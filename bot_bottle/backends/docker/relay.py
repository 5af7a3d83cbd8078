"""The bottle relay: runs in the sidecar container, whose network namespace the agent
container shares, and forwards `127.0.0.1:PORT` to a host sidecar's Unix socket.

That is how `SidecarLink`s appear inside a Docker bottle at the same `127.0.0.1:port`
as in every other backend. Stdlib only, so it starts in tens of milliseconds. A socket
that cannot be reached closes the agent's connection: no sidecar, no network.

    python3 -m bot_bottle.backends.docker.relay PORT=/path/to.sock [PORT=/path ...]
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys

READY = "bot-bottle-relay ready"


def parse(args: list[str]) -> list[tuple[int, str]]:
    """`PORT=SOCKET` arguments as (port, socket path); ValueError on anything else."""
    out = []
    for a in args:
        port, sep, path = a.partition("=")
        if not sep or not port.isdigit() or not path.startswith("/"):
            raise ValueError(f"expected PORT=/absolute/socket, got {a!r}")
        out.append((int(port), path))
    return out


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


def _handler(path: str):  # type: ignore[no-untyped-def]
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(path)
        except OSError as e:
            print(f"relay: {path}: {e}; closing the agent's connection", file=sys.stderr)
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    return handle


async def serve(mappings: list[tuple[int, str]]) -> None:
    servers = [
        await asyncio.start_server(_handler(path), "127.0.0.1", port) for port, path in mappings
    ]
    print(READY, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for s in servers:
        s.close()


def main(argv: list[str] | None = None) -> int:
    try:
        mappings = parse(sys.argv[1:] if argv is None else argv)
    except ValueError as e:
        print(f"relay: {e}", file=sys.stderr)
        return 2
    asyncio.run(serve(mappings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
