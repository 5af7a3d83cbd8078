"""Known values and built-in token formats are found through the transfer encodings an
agent can wrap them in: partial and full percent-escapes (also doubled), hex, JSON
`\\u` escapes, quoted-printable MIME parts, base64/base64url of a token format."""

from __future__ import annotations

import base64
import binascii
import json
import quopri

import pytest

from bot_bottle.policy.dlp import Scanner

# Fake values assembled at runtime so this file does not itself look like a leak.
TOKEN = "tok-" + "Q7vK2mXp9LrT4wZb8NcY3hJd"
PROTECTED = "hunter2-" + "correct-horse-battery"
CANARY = "bb-canary-" + "7f3e9a1c5d2b4680"
GH = "ghp_" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7c"
AWS_ID = "AKIA" + "Z7QX3B5N2M4K6J8H"


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner(
        exact={"EGRESS_TOKEN_0": TOKEN, "EGRESS_PROTECT_0": PROTECTED}, canaries=[CANARY]
    )


def pct_one(value: str, i: int) -> str:
    return value[:i] + "%" + format(ord(value[i]), "02X") + value[i + 1 :]


def pct_all(value: str) -> str:
    return "".join("%" + format(b, "02x") for b in value.encode())


def json_u(value: str, every: int = 1) -> str:
    return "".join(f"\\u{ord(c):04x}" if i % every == 0 else c for i, c in enumerate(value))


def qp_part(value: str) -> str:
    # One character escaped: an honest encoder never escapes letters, an agent does.
    body = value[:3] + "=" + format(ord(value[3]), "02X") + value[4:]
    return (
        "--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        f"note {body} end\r\n--b--\r\n"
    )


def shapes(value: str) -> dict[str, str]:
    return {
        "query-one-escape": f"GET /search?q={pct_one(value, 5)}&x=1",
        "query-first-escape": f"/x?q={pct_one(value, 0)}",
        "form-fully-encoded": f"a=1&secret={pct_all(value)}",
        "double-percent": "q=" + pct_one(value, 6).replace("%", "%25"),
        "hex-lower": f"blob={binascii.hexlify(value.encode()).decode()}",
        "hex-upper": f"blob={binascii.hexlify(value.encode()).decode().upper()}",
        "hex-in-text": f"x {binascii.hexlify(('pre ' + value).encode()).decode()} y",
        "json-u-all": json.dumps({"k": "PLACEHOLDER"}).replace("PLACEHOLDER", json_u(value)),
        "json-u-some": json.dumps({"k": "PLACEHOLDER"}).replace("PLACEHOLDER", json_u(value, 7)),
        "js-x-escape": "s = '" + value[:4] + "\\x" + format(ord(value[4]), "02x") + value[5:] + "'",
        "quoted-printable": qp_part(value),
        "base64-in-text": "data=" + base64.b64encode(("key: " + value).encode()).decode(),
        "base64url": base64.urlsafe_b64encode(("\xfb\xff " + value).encode()).decode(),
    }


CASES = [
    (name, value, text)
    for value in (TOKEN, PROTECTED, CANARY)
    for name, text in shapes(value).items()
]


@pytest.mark.parametrize(
    ("value", "text"), [(v, t) for _, v, t in CASES], ids=[f"{v[:6]}-{n}" for n, v, _ in CASES]
)
def test_known_value_found_through_encoding(scanner: Scanner, value: str, text: str) -> None:
    assert value not in text
    f = scanner.first(text)
    assert f is not None, text
    assert f.detector in ("EGRESS_TOKEN_0", "EGRESS_PROTECT_0", "canary")
    assert [x for x in scanner.scan(text) if x.detector == f.detector]


FORMATS = [(n, v, t) for v in (GH, AWS_ID) for n, t in shapes(v).items()]


@pytest.mark.parametrize(
    ("value", "text"), [(v, t) for _, v, t in FORMATS], ids=[f"{v[:4]}-{n}" for n, v, _ in FORMATS]
)
def test_builtin_format_found_through_encoding(scanner: Scanner, value: str, text: str) -> None:
    assert value not in text
    assert scanner.first(text) is not None
    found = {f.detector for f in scanner.scan(text)}
    assert found & {"github-token", "aws-access-key"}, (found, text)


@pytest.mark.parametrize("k", range(3))
def test_base64_of_token_at_every_alignment(scanner: Scanner, k: int) -> None:
    text = base64.b64encode(b"x" * k + f"export GITHUB_TOKEN={GH}\n".encode()).decode()
    assert scanner.first("config: " + text) is not None


def test_finding_is_reported_at_the_encoded_span(scanner: Scanner) -> None:
    text = "prefix " * 300 + f"q={pct_all(TOKEN)}" + " suffix" * 300
    [f] = scanner.scan(text)
    assert f.detector == "EGRESS_TOKEN_0"
    assert f.start <= text.index("q=") + 2 and text.index(" suffix") <= f.end


@pytest.mark.parametrize(
    "text",
    [
        "GET /a%20b/c%2Fd?q=hello%20world&r=%E2%9C%93",
        "path /v1/%2e%2e/admin is refused",
        json.dumps({"text": "caf\u00e9 \u001b[0m \u2713 <b>&amp;</b>"}),
        json.dumps({"html": "\\u003cdiv\\u003e"}),
        "Content-Transfer-Encoding: quoted-printable\r\n\r\nHello =3D world=\r\nwrapped\r\n",
        base64.b64encode(bytes(range(256)) * 8).decode(),
        binascii.hexlify(bytes(range(256)) * 8).decode(),
    ],
)
def test_encoded_ordinary_text_is_clean(scanner: Scanner, text: str) -> None:
    assert scanner.scan(text) == []


def test_quoted_printable_needs_the_mime_header(scanner: Scanner) -> None:
    qp = quopri.encodestring(TOKEN.encode(), quotetabs=True).decode()
    assert qp == TOKEN  # letters never need escaping: the agent escapes one on purpose
    body = TOKEN[:3] + "=" + format(ord(TOKEN[3]), "02X") + TOKEN[4:]
    assert scanner.first(f"Content-Transfer-Encoding: quoted-printable\n\n{body}") is not None


def test_many_escapes_decode_the_whole_buffer() -> None:
    long_value = "svc-" + "k9Xq2Lm7Vt4Rw1Zp8Ny3Bc6Hd0Gf5Js2Ke8Aa9Bq" * 3
    s = Scanner(exact={"EGRESS_PROTECT_0": long_value}, builtin=False)
    filler = "&".join(f"f{i}=%7E{i}" for i in range(500))  # escapes everywhere, > MAX_SIGNS
    text = filler + "&v=" + pct_one(long_value, 50) + "&" + filler
    f = s.first(text)
    assert f is not None and f.detector == "EGRESS_PROTECT_0"
    assert s.first(filler) is None
