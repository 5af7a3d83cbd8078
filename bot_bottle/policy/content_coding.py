"""Request bodies as the upstream will read them: every `Content-Encoding` undone.

DLP must see what the upstream sees. A body sent as `gzip, gzip`, `x-gzip`, `br` or
`zstd` is decoded layer by layer (last applied, first undone); an encoding we cannot
decode is refused rather than forwarded unscanned, and decompression stops at
`MAX_DECODED` bytes so a small zip bomb cannot exhaust the sidecar.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable

import brotli
import zstandard

# Larger than any request body an agent legitimately compresses (API payloads, uploads).
MAX_DECODED = 64 << 20
_BROTLI_CHUNK = 1024
MAX_LAYERS = 4


class UndecodableBody(ValueError):
    """A body whose Content-Encoding cannot be undone (unknown, corrupt or too large)."""


def _limit(out_len: int, limit: int) -> None:
    if out_len > limit:
        raise UndecodableBody(f"decompresses to more than {limit >> 20} MiB")


def _zlib(data: bytes, wbits: int, limit: int) -> bytes:
    out = bytearray()
    while True:
        d = zlib.decompressobj(wbits)
        chunk = d.decompress(data, limit + 1 - len(out))
        out += chunk
        _limit(len(out), limit)
        while d.unconsumed_tail:
            out += d.decompress(d.unconsumed_tail, limit + 1 - len(out))
            _limit(len(out), limit)
        if not d.eof:
            raise UndecodableBody("compressed data is truncated")
        data = d.unused_data
        # gzip allows several members back to back; each is decoded in turn.
        if not data or wbits != 31:
            return bytes(out)


def _gzip(data: bytes, limit: int) -> bytes:
    return _zlib(data, 31, limit)


def _deflate(data: bytes, limit: int) -> bytes:
    # "deflate" means zlib-wrapped, but some clients send raw deflate; servers accept both.
    try:
        return _zlib(data, 15, limit)
    except zlib.error:
        return _zlib(data, -15, limit)


def _br(data: bytes, limit: int) -> bytes:
    # brotli has no output cap, so input is fed in small pieces and the output checked.
    d = brotli.Decompressor()
    out = bytearray()
    for i in range(0, len(data), _BROTLI_CHUNK):
        out += d.process(data[i : i + _BROTLI_CHUNK])
        _limit(len(out), limit)
    if not d.is_finished():
        raise UndecodableBody("compressed data is truncated")
    return bytes(out)


def _zstd(data: bytes, limit: int) -> bytes:
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True)
    out = reader.read(limit + 1)
    _limit(len(out), limit)
    return bytes(out)


_DECODERS: dict[str, Callable[[bytes, int], bytes]] = {
    "gzip": _gzip,
    "x-gzip": _gzip,
    "deflate": _deflate,
    "br": _br,
    "zstd": _zstd,
}


def codings(header: str) -> list[str]:
    """The codings of a Content-Encoding value (or several joined with `,`), in order
    applied; `identity` is a no-op and dropped."""
    names = [c.strip().lower() for c in header.split(",")]
    return [c for c in names if c and c != "identity"]


def decode_body(body: bytes, content_encoding: str, limit: int = MAX_DECODED) -> bytes:
    """`body` with its content codings undone, or UndecodableBody naming why not."""
    layers = codings(content_encoding)
    if len(layers) > MAX_LAYERS:
        raise UndecodableBody(f"more than {MAX_LAYERS} content codings")
    for name in reversed(layers):
        decoder = _DECODERS.get(name)
        if decoder is None:
            raise UndecodableBody(f"unsupported Content-Encoding {name!r}")
        try:
            body = decoder(body, limit)
        except UndecodableBody:
            raise
        except Exception as e:  # zlib.error, brotli.error, ZstdError: corrupt data
            raise UndecodableBody(f"{name} data is corrupt ({type(e).__name__})") from None
    return body
