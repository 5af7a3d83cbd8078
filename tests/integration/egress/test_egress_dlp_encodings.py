"""Known secret values and built-in token formats are caught by the real egress in
the encodings an agent can wrap them in, and nothing of such a request reaches the
upstream; a body whose Content-Encoding cannot be decoded is refused."""

from __future__ import annotations

import base64
import binascii
import gzip
import json
from pathlib import Path

import pytest
from egress_harness import CANARY, PROTECTED, SECRET, Egress, curl
from egress_upstream import Upstream

pytestmark = pytest.mark.integration

GH = "ghp_" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7c"


def one_escape(value: str, i: int) -> str:
    return value[:i] + "%" + format(ord(value[i]), "02x") + value[i + 1 :]


def all_escaped(value: str) -> str:
    return "".join("%" + format(b, "02X") for b in value.encode())


def json_u(value: str) -> str:
    return "".join(f"\\u{ord(c):04x}" for c in value)


MIME = (
    "--b\r\nContent-Disposition: form-data; name=f\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    + SECRET[:5]
    + "="
    + format(ord(SECRET[5]), "02X")
    + SECRET[6:]
    + "\r\n--b--\r\n"
)

# (id, query, body, content-encoding, rule)
CASES = [
    ("query-one-escape", "q=" + one_escape(SECRET, 4), b"", "", "dlp"),
    ("form-all-escaped", "", ("a=1&b=" + all_escaped(SECRET)).encode(), "", "dlp"),
    ("hex-body", "", binascii.hexlify(PROTECTED.encode()), "", "dlp"),
    ("json-u-escapes", "", json.dumps({"t": "X"}).replace("X", json_u(SECRET)).encode(), "", "dlp"),
    ("x-gzip", "", gzip.compress(SECRET.encode()), "x-gzip", "dlp"),
    ("gzip-gzip", "", gzip.compress(gzip.compress(SECRET.encode())), "gzip, gzip", "dlp"),
    ("quoted-printable", "", MIME.encode(), "", "dlp"),
    ("base64-gh-token", "", base64.b64encode(f"token: {GH}".encode()), "", "dlp"),
    ("hex-canary", "", binascii.hexlify(CANARY.encode()).upper(), "", "canary"),
    ("undecodable", "", b"\x1f\x9d\x90 lzw bytes", "compress", "encoding"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("query", "body", "coding", "rule"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_encoded_secret_is_refused(
    egress: Egress,
    upstream: Upstream,
    tmp_path: Path,
    query: str,
    body: bytes,
    coding: str,
    rule: str,
) -> None:
    seen = len(upstream.records)
    url = f"https://api.example.test:{upstream.port}/v1/x" + (f"?{query}" if query else "")
    args = ["--path-as-is", url]
    if body:
        (tmp_path / "body").write_bytes(body)
        args = ["--data-binary", f"@{tmp_path / 'body'}", *args]
    if coding:
        args = ["-H", f"Content-Encoding: {coding}", *args]
    code, text, _ = curl(egress, *args)
    assert code == 403, text
    assert text.startswith("bot-bottle egress denied ") and "\nto allow: " in text
    rec = egress.wait_audit(lambda r: r.get("rule") == rule and r.get("decision") == "deny")
    assert rec["status"] == 403
    assert upstream.records[seen:] == []


def test_ordinary_encoded_body_still_passes(
    egress: Egress, upstream: Upstream, tmp_path: Path
) -> None:
    sent = gzip.compress(b'{"q": "caf%C3%A9 a%20b \\u00e9 %2F"}')
    (tmp_path / "body").write_bytes(sent)
    code, text, _ = curl(
        egress,
        "-H",
        "Content-Encoding: gzip",
        "--data-binary",
        f"@{tmp_path / 'body'}",
        f"https://api.example.test:{upstream.port}/v1/ok?x=%2Fa%20b",
    )
    assert code == 200, text
    assert upstream.last().body == sent
