"""A fast HTTPS upstream for the load and bulk benchmarks (asyncio, keep-alive, trustme CA).

    python benchmarks/fake_https.py DIR   -> prints "READY <port> <ca.pem>" and serves

`/small` answers 13 bytes; `/bytes/N` streams N bytes from one reused 1 MiB buffer, so
the server holds no more than that whatever N is. For the soak: a request with a body
(`POST /upload`) is read and dropped, answering its length; `/sse/N` streams N events
50 ms apart (chunked); `/ws` echoes WebSocket messages. Runs in its own process so that
it does not share an event loop (or a GIL) with the client or the proxy it measures.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ssl
import sys
from pathlib import Path

import trustme

CHUNK = b"x" * (1024 * 1024)
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _header(head: bytes, name: bytes) -> bytes:
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == name:
            return v.strip()
    return b""


async def _ws_echo(r: asyncio.StreamReader, w: asyncio.StreamWriter, head: bytes) -> None:
    key = _header(head, b"sec-websocket-key").decode()
    accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
    w.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept.encode() + b"\r\n\r\n")  # fmt: skip
    while True:
        b0, b1 = await r.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(await r.readexactly(2), "big")
        elif n == 127:
            n = int.from_bytes(await r.readexactly(8), "big")
        mask = await r.readexactly(4) if b1 & 0x80 else b"\0\0\0\0"
        data = bytes(c ^ mask[i % 4] for i, c in enumerate(await r.readexactly(n)))
        op = b0 & 0x0F
        if op == 8:
            w.write(bytes([0x88, 2]) + data[:2])
            await w.drain()
            return
        if op in (1, 2):
            size = bytes([len(data)]) if len(data) < 126 else b"\x7e" + len(data).to_bytes(2, "big")
            w.write(bytes([0x80 | op]) + size + data)
            await w.drain()


async def _sse(w: asyncio.StreamWriter, n: int) -> None:
    w.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")  # fmt: skip
    for i in range(n):
        event = f"data: event {i}\n\n".encode()
        w.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
        await w.drain()
        await asyncio.sleep(0.05)
    w.write(b"0\r\n\r\n")
    await w.drain()


async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await r.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            length = int(_header(head, b"content-length") or 0)
            if length:
                left = length
                while left:
                    left -= len(await r.readexactly(min(left, 1 << 16)))
                body = str(length).encode()
                w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                await w.drain()
            elif path == "/ws":
                await _ws_echo(r, w, head)
                return
            elif path.startswith("/sse/"):
                await _sse(w, int(path[5:]))
            elif path.startswith("/bytes/"):
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
