"""A fast HTTPS upstream for the load and bulk benchmarks (asyncio, keep-alive, trustme CA).

    python benchmarks/fake_https.py DIR   -> prints "READY <port> <ca.pem>" and serves

`/small` answers 13 bytes; `/bytes/N` streams N bytes from one reused 1 MiB buffer, so
the server holds no more than that whatever N is. Runs in its own process so that it
does not share an event loop (or a GIL) with the client or the proxy it is measured by.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
from pathlib import Path

import trustme

CHUNK = b"x" * (1024 * 1024)


async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await r.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            if path.startswith("/bytes/"):
                n = int(path[7:])
                w.write(f"HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n".encode())
                while n > 0:
                    w.write(CHUNK[: min(n, len(CHUNK))])
                    n -= len(CHUNK)
                    await w.drain()
            else:
                w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nhello, world\n")
                await w.drain()
    except (asyncio.IncompleteReadError, ConnectionError, OSError, ssl.SSLError):
        pass
    finally:
        w.close()


async def main(tmp: Path) -> None:
    ca = trustme.CA()
    ca_path = tmp / "upstream-ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("api.example.test", "127.0.0.1").configure_cert(ctx)
    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(f"READY {port} {ca_path}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
