"""Request bodies are decoded as the upstream would decode them before DLP, stacked
codings included; what cannot be decoded is refused, and zip bombs stop early."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable

import brotli
import pytest
import zstandard

from bot_bottle.policy.content_coding import UndecodableBody, codings, decode_body
from bot_bottle.policy.egress_policy import EgressPolicy
from bot_bottle.sidecars.egress.credentials import Credentials
from bot_bottle.sidecars.egress.gate import Gate

TOKEN = "tok-" + "Q7vK2mXp9LrT4wZb8NcY3hJd"
BODY = f'{{"note": "{TOKEN}"}}'.encode()


def _raw_deflate(b: bytes) -> bytes:
    c = zlib.compressobj(wbits=-15)
    return c.compress(b) + c.flush()


ENCODED = {
    "gzip": gzip.compress(BODY),
    "x-gzip": gzip.compress(BODY),
    "GZIP": gzip.compress(BODY),
    "gzip, gzip": gzip.compress(gzip.compress(BODY)),
    "deflate": zlib.compress(BODY),
    "deflate ": _raw_deflate(BODY),
    "br": brotli.compress(BODY),
    "zstd": zstandard.ZstdCompressor().compress(BODY),
    "gzip, br, zstd": zstandard.ZstdCompressor().compress(brotli.compress(gzip.compress(BODY))),
    "identity": BODY,
    "identity, gzip": gzip.compress(BODY),
}


@pytest.mark.parametrize("coding", list(ENCODED))
def test_every_coding_the_upstream_accepts_is_undone(coding: str) -> None:
    assert decode_body(ENCODED[coding], coding) == BODY


def test_multi_member_gzip() -> None:
    assert decode_body(gzip.compress(BODY[:5]) + gzip.compress(BODY[5:]), "gzip") == BODY


@pytest.mark.parametrize(
    ("body", "coding", "why"),
    [
        (BODY, "compress", "unsupported"),
        (BODY, "gzip", "corrupt"),
        (gzip.compress(BODY)[:-12], "gzip", "truncated"),
        (b"\x00garbage", "br", "corrupt"),
        (b"\x00garbage", "zstd", "corrupt"),
        (BODY, "gzip, gzip, gzip, gzip, gzip", "more than"),
    ],
)
def test_undecodable_is_refused(body: bytes, coding: str, why: str) -> None:
    with pytest.raises(UndecodableBody, match=why):
        decode_body(body, coding)


@pytest.mark.parametrize(
    ("coding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("br", brotli.compress),
        ("zstd", zstandard.ZstdCompressor().compress),
    ],
)
def test_bomb_stops_at_the_limit(coding: str, compress: Callable[[bytes], bytes]) -> None:
    bomb = compress(b"\0" * (8 << 20))
    with pytest.raises(UndecodableBody, match="more than 1 MiB"):
        decode_body(bomb, coding, limit=1 << 20)


def test_codings_order_and_identity() -> None:
    assert codings("identity") == []
    assert codings(" gzip ,BR") == ["gzip", "br"]


@pytest.fixture
def gate() -> Gate:
    return Gate.build(EgressPolicy("b"), Credentials({"EGRESS_TOKEN_0": TOKEN}))


@pytest.mark.parametrize("coding", ["x-gzip", "gzip, gzip", "br", "zstd", "deflate"])
def test_gate_finds_token_in_encoded_body(gate: Gate, coding: str) -> None:
    d = gate.scan_body(ENCODED[coding], coding)
    assert not d.allow and d.rule == "dlp" and d.detector == "EGRESS_TOKEN_0"


def test_gate_refuses_what_it_cannot_decode(gate: Gate) -> None:
    d = gate.scan_body(b"\x1f\x8b not really", "compress")
    assert not d.allow and d.rule == "encoding" and "compress" in d.reason
    assert gate.scan_body(gzip.compress(b"hello"), "gzip").allow
