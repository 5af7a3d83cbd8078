"""Load generator for benchmarks/load.py and benchmarks/bulk.py; standard library only, so
it runs unchanged on the host and inside a bottle (/usr/bin/python3, no site dir).

    python3 loadgen.py '{"mode": "load", ...}'   -> one JSON line on stdout

Speaks HTTP/1.1 over TLS, through an HTTP CONNECT proxy when `proxy` is set (inside a
bottle that is $HTTPS_PROXY, the in-bottle forwarder). Modes:
- load: `conns` keep-alive connections issue GETs back to back for `seconds`; a request
  that takes longer than `timeout` counts as an error (and its connection is replaced).
- bulk: one GET of `size` bytes, read to the end; reports MiB/s.
- soak: steady mixed traffic for `seconds` (small GETs, 256 KiB uploads, SSE streams,
  WebSocket echoes, each on its own keep-alive connections); errors per kind and minute.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import os
import ssl
import sys
import time
from typing import Any

MIB = 1024 * 1024


@functools.cache
def _context(ca: str | None) -> ssl.SSLContext:
    """One TLS context per process, as a real client keeps: building one loads the CA
    bundle (inside a bottle, the system CAs too), milliseconds of CPU each time."""
    return ssl.create_default_context(cafile=ca)


async def _open(cfg: dict[str, Any]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = cfg["host"], int(cfg["port"])
    ctx = _context(cfg["ca"])
    proxy = cfg.get("proxy")
    # `connect` is where the connection goes (direct) or what CONNECT names (proxy); TLS
    # always names `host` (a bare mitmproxy has no hosts map: it is CONNECTed to the IP).
    target = cfg.get("connect") or host
    if not proxy:
        return await asyncio.open_connection(target, port, ssl=ctx, server_hostname=host,
                                             limit=4 * MIB)  # fmt: skip
    phost, _, pport = proxy.rpartition(":")
    r, w = await asyncio.open_connection(phost, int(pport), limit=4 * MIB)
    w.write(f"CONNECT {target}:{port} HTTP/1.1\r\nHost: {target}:{port}\r\n\r\n".encode())
    head = await r.readuntil(b"\r\n\r\n")
    if b" 200" not in head.split(b"\r\n", 1)[0]:
        raise ConnectionError(f"CONNECT refused: {head[:80]!r}")
    await w.start_tls(ctx, server_hostname=host)
    return r, w


async def _get(r: asyncio.StreamReader, w: asyncio.StreamWriter, host: str, path: str) -> int:
    """One GET on a keep-alive connection; returns the body length read."""
    w.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    head = await r.readuntil(b"\r\n\r\n")
    status = head.split(b" ", 2)[1]
    if status != b"200":
        raise ConnectionError(f"status {status!r}")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    left = length
    while left:
        chunk = await r.read(min(left, 4 * MIB))
        if not chunk:
            raise ConnectionError("body cut short")
        left -= len(chunk)
    return length


async def _worker(cfg: dict[str, Any], end: float, lat: list[float], errs: list[str],
                  opens: list[float]) -> None:  # fmt: skip
    timeout = float(cfg["timeout"])
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    while time.monotonic() < end:
        t0 = time.monotonic()
        try:
            if conn is None:
                conn = await asyncio.wait_for(_open(cfg), timeout)
                opens.append(time.monotonic() - t0)
            await asyncio.wait_for(_get(*conn, cfg["host"], "/small"), timeout)
            lat.append(time.monotonic() - t0)
        except (TimeoutError, OSError, ConnectionError, ssl.SSLError) as e:
            phase = "request" if conn else "connect"
            errs.append(f"{type(e).__name__} in {phase} after {time.monotonic() - t0:.0f}s")
            if conn is not None:
                conn[1].transport.abort()
            conn = None
    if conn is not None:
        conn[1].transport.abort()


async def load(cfg: dict[str, Any]) -> dict[str, Any]:
    lat: list[float] = []
    errs: list[str] = []
    opens: list[float] = []
    t0 = time.monotonic()
    end = t0 + float(cfg["seconds"])
    await asyncio.gather(*(_worker(cfg, end, lat, errs, opens) for _ in range(int(cfg["conns"]))))
    lat.sort()

    def pct(q: float) -> float:
        return round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 1) if lat else -1.0

    return {"requests": len(lat), "errors": len(errs), "error_kinds": sorted(set(errs))[:10],
            "p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": pct(1.0),
            "open_max_ms": round(max(opens, default=0) * 1000, 1),
            "elapsed_s": round(time.monotonic() - t0, 1)}  # fmt: skip


def curl_bulk(cfg: dict[str, Any], curl: str) -> dict[str, Any]:
    """The bulk download by curl (C, OpenSSL): a Python client would cap the direct figure."""
    import subprocess

    host, port, target = cfg["host"], cfg["port"], cfg.get("connect") or cfg["host"]
    argv = [curl, "-sS", "-o", "/dev/null", "-w", "%{size_download} %{time_total}",
            "--connect-to", f"{host}:{port}:{target}:{port}"]  # fmt: skip
    argv += ["--proxy", f"http://{cfg['proxy']}"] if cfg["proxy"] else ["--noproxy", "*"]
    argv += ["--cacert", cfg["ca"] or os.environ["SSL_CERT_FILE"]]
    argv += ["--http1.1"] if cfg.get("http") == "1.1" else ["--http2"]
    out = subprocess.run([*argv, f"https://{host}:{port}/bytes/{int(cfg['size'])}"],
                         capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    n, secs = int(out[0]), float(out[1])
    return {"bytes": n, "seconds": round(secs, 3), "mib_s": round(n / MIB / secs, 1),
            "client": "curl"}  # fmt: skip


async def bulk(cfg: dict[str, Any]) -> dict[str, Any]:
    import shutil

    curl = shutil.which("curl")
    if curl and cfg.get("client") != "python":
        return curl_bulk(cfg, curl)
    r, w = await _open(cfg)
    await _get(r, w, cfg["host"], "/small")  # TLS and connection set up before the clock
    t0 = time.monotonic()
    n = await _get(r, w, cfg["host"], f"/bytes/{int(cfg['size'])}")
    secs = time.monotonic() - t0
    w.transport.abort()
    return {"bytes": n, "seconds": round(secs, 3), "mib_s": round(n / MIB / secs, 1)}


async def opens(cfg: dict[str, Any]) -> dict[str, Any]:
    """Open `conns` connections at once; per phase, the slowest and the median (ms)."""
    phases: dict[str, list[float]] = {"tcp": [], "connect": [], "tls": []}

    async def one() -> None:
        t0 = time.monotonic()
        phost, _, pport = cfg["proxy"].rpartition(":")
        r, w = await asyncio.open_connection(phost, int(pport))
        t1 = time.monotonic()
        w.write(f"CONNECT {cfg['host']}:{cfg['port']} HTTP/1.1\r\n\r\n".encode())
        await r.readuntil(b"\r\n\r\n")
        t2 = time.monotonic()
        await w.start_tls(_context(cfg["ca"]), server_hostname=cfg["host"])
        t3 = time.monotonic()
        for k, v in zip(phases, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            phases[k].append(v * 1000)
        w.transport.abort()

    await asyncio.sleep(float(cfg.get("delay", 0)))  # let a fresh bottle settle first
    await asyncio.gather(*(one() for _ in range(int(cfg["conns"]))))
    return {k: (round(sorted(v)[len(v) // 2]), round(max(v))) for k, v in phases.items()}


async def _read_body(r: asyncio.StreamReader, head: bytes) -> int:
    """The body after `head`: content-length or chunked; returns its length."""
    lower = head.lower()
    if b"transfer-encoding: chunked" in lower:
        n = 0
        while True:
            size = int((await r.readuntil(b"\r\n")).strip(), 16)
            await r.readexactly(size + 2)
            n += size
            if size == 0:
                return n
    for line in lower.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return len(await r.readexactly(int(line.split(b":", 1)[1])))
    return 0


async def _exchange(r: asyncio.StreamReader, w: asyncio.StreamWriter, request: bytes) -> int:
    w.write(request)
    head = await r.readuntil(b"\r\n\r\n")
    if head.split(b" ", 2)[1] != b"200":
        raise ConnectionError(f"status {head.split(b' ', 2)[1]!r}")
    return await _read_body(r, head)


def _ws_frame(op: int, data: bytes) -> bytes:
    mask = os.urandom(4)
    size = bytes([0x80 | len(data)]) if len(data) < 126 else b"\xfe" + len(data).to_bytes(2, "big")
    return bytes([0x80 | op]) + size + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(data))


async def _ws_session(r: asyncio.StreamReader, w: asyncio.StreamWriter, host: str) -> int:
    """Upgrade, echo 20 messages 20 ms apart, close; returns the messages echoed."""
    key = base64.b64encode(os.urandom(16)).decode()
    w.write(f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode())  # fmt: skip
    head = await r.readuntil(b"\r\n\r\n")
    if b" 101 " not in head.split(b"\r\n", 1)[0] + b" ":
        raise ConnectionError(f"upgrade refused: {head[:40]!r}")
    for i in range(20):
        msg = f"soak message {i}".encode()
        w.write(_ws_frame(1, msg))
        _, b1 = await r.readexactly(2)
        if await r.readexactly(b1 & 0x7F) != msg:
            raise ConnectionError("echo differs")
        await asyncio.sleep(0.02)
    w.write(_ws_frame(8, b"\x03\xe8"))
    await r.readexactly(4)
    return 20


async def _soak_worker(cfg: dict[str, Any], kind: str, end: float, t0: float,
                       stats: dict[str, Any]) -> None:  # fmt: skip
    host, timeout = cfg["host"], float(cfg["timeout"])
    upload = b"u" * (256 * 1024)
    post = f"POST /upload HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(upload)}\r\n\r\n"
    requests = {
        "small": (f"GET /small HTTP/1.1\r\nHost: {host}\r\n\r\n".encode(), 0.05),
        "upload": (post.encode() + upload, 0.2),
        "sse": (f"GET /sse/20 HTTP/1.1\r\nHost: {host}\r\n\r\n".encode(), 0.1),
    }
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    while time.monotonic() < end:
        t = time.monotonic()
        try:
            if conn is None:
                conn = await asyncio.wait_for(_open(cfg), timeout)
            if kind == "ws":
                await asyncio.wait_for(_ws_session(*conn, host), timeout)
                conn[1].transport.abort()  # a WebSocket connection ends with its session
                conn, pause = None, 0.1
            else:
                request, pause = requests[kind]
                await asyncio.wait_for(_exchange(*conn, request), timeout)
            stats["ops"][kind] += 1
        except (TimeoutError, OSError, ConnectionError, ssl.SSLError, ValueError,
                asyncio.IncompleteReadError) as e:  # fmt: skip
            stats["errors"][kind] += 1
            minute = int((t - t0) // 60)
            stats["per_minute"][minute] = stats["per_minute"].get(minute, 0) + 1
            stats["kinds"].add(f"{kind}: {type(e).__name__}: {str(e)[:60]}")
            if conn is not None:
                conn[1].transport.abort()
            conn, pause = None, 1.0
        await asyncio.sleep(pause)
    if conn is not None:
        conn[1].transport.abort()


async def soak(cfg: dict[str, Any]) -> dict[str, Any]:
    mix = {"small": 4, "upload": 2, "sse": 2, "ws": 2}
    stats: dict[str, Any] = {"ops": dict.fromkeys(mix, 0), "errors": dict.fromkeys(mix, 0),
                             "per_minute": {}, "kinds": set()}  # fmt: skip
    t0 = time.monotonic()
    end = t0 + float(cfg["seconds"])
    await asyncio.gather(*(_soak_worker(cfg, kind, end, t0, stats)
                           for kind, n in mix.items() for _ in range(n)))  # fmt: skip
    return {"ops": stats["ops"], "errors": stats["errors"],
            "errors_per_minute": stats["per_minute"], "error_kinds": sorted(stats["kinds"])[:10],
            "elapsed_s": round(time.monotonic() - t0, 1)}  # fmt: skip


def main() -> None:
    cfg = json.loads(sys.argv[1])
    cfg.setdefault("proxy", os.environ.get("HTTPS_PROXY", "").removeprefix("http://").rstrip("/"))
    run = {"load": load, "bulk": bulk, "open": opens, "soak": soak}[cfg["mode"]]
    print(json.dumps(asyncio.run(run(cfg))), flush=True)


if __name__ == "__main__":
    main()
