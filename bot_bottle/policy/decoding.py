"""Transfer encodings an agent can wrap a secret in, undone before DLP matches.

The scanner also looks for *signs* of an encoding: a percent-escape or JSON `\\u`
escape of a letter, digit or other character an honest encoder leaves alone (so
these are rare in ordinary traffic), a MIME part header declaring quoted-printable,
or the base64 / hex form of a built-in token's prefix. Only
where a sign appears is the text around it decoded and scanned again, so ordinary
bodies cost nothing extra and an encoded secret is matched like a plain one.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice
from urllib.parse import unquote_to_bytes

# How far either side of a sign the decoded window reaches; the scanner widens it to
# cover its longest known value in its widest (percent-encoded) form.
WINDOW = 1024
# Views of views: URL-encoded base64 of a hex string is three layers. Each kind is
# undone once along a chain, except percent-encoding, which is commonly doubled.
MAX_DEPTH = 3
REPEATABLE = frozenset({"percent"})
# Past this many signs of one kind, the whole buffer is decoded once instead.
MAX_SIGNS = 64
# A base64 or hex run longer than this around a sign is decoded only this far.
MAX_RUN = 32768

# Characters an honest encoder never escapes (RFC 3986 unreserved): an escape of one
# is a sign someone is hiding text. Reserved characters (`/`, `+`, `=`) are escaped
# all the time, so they count only when a known value contains them.
UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


# Servers undo quoted-printable only in MIME parts that declare it in this header; it
# is found in the scanner's Hyperscan pass (any letter case).
QP_SIGN = rb"content-transfer-encoding[\t ]*:[\t ]*\"?quoted-printable"
# Past this many `%` looked at one by one, a regex finds the rest.
MAX_LOOKS = 4096


def sign_codes(known: Iterable[bytes] = ()) -> frozenset[bytes]:
    """Lowercase hex codes of the characters whose escape is a sign: unreserved ones
    (an honest encoder leaves them alone), and every printable one a known value has."""
    chars = set(UNRESERVED)
    for value in known:
        chars.update(c for c in value if 0x20 <= c < 0x7F)
    return frozenset(b"%02x" % c for c in chars)


@dataclass(frozen=True)
class PercentSigns:
    """Percent-escapes of sign characters (`%41`, and `%2541` for servers that decode
    twice). Found with memchr rather than in the Hyperscan pass: `%` is common in code
    and absent from most bodies, and a Hyperscan expression for it slowed every scan
    by a tenth; a body without `%` costs one memchr."""

    codes: frozenset[bytes]
    regex: re.Pattern[bytes]

    @classmethod
    def build(cls, codes: frozenset[bytes]) -> PercentSigns:
        alt = b"|".join(sorted(codes))
        return cls(codes, re.compile(b"%(?:25)*(?:" + alt + b")", re.I))

    def find(self, buf: bytes) -> list[tuple[int, int]] | None:
        """Where the signs are; None when there are more than MAX_SIGNS (the caller
        then decodes the whole buffer). Past MAX_LOOKS `%`, the regex finds the rest."""
        out: list[tuple[int, int]] = []
        i, looks = buf.find(b"%"), 0
        while i != -1:
            looks += 1
            if looks > MAX_LOOKS:
                out += [m.span() for m in islice(self.regex.finditer(buf, i), MAX_SIGNS + 1)]
                break
            k = i + 1
            while buf.startswith(b"25", k):
                k += 2
            if buf[k : k + 2].lower() in self.codes:
                out.append((i, k + 2))
            i = buf.find(b"%", i + 1)
        return out if len(out) <= MAX_SIGNS else None


def json_sign(codes: frozenset[bytes]) -> bytes:
    """JSON `\\u00XX` and JavaScript `\\xXX` escapes of sign characters, as a Hyperscan
    expression (caseless): `\\` followed by `u00` is rare enough for its pass."""
    return rb"\\(?:u00|x)(?:" + b"|".join(sorted(codes)) + b")"


_JSON_ESCAPE = re.compile(rb"\\(?:u([0-9A-Fa-f]{4})|x([0-9A-Fa-f]{2})|([\\/\"']))")
_B64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_")
_HEXCH = frozenset(b"0123456789abcdefABCDEF")
_TO_STD = bytes.maketrans(b"-_", b"+/")


def percent_decode(buf: bytes) -> bytes:
    """Every `%XX` decoded, malformed escapes left as they are (as servers do)."""
    return unquote_to_bytes(buf)


def _json_char(m: re.Match[bytes]) -> bytes:
    u, x, c = m.groups()
    if c is not None:
        return c
    return chr(int(u or x, 16)).encode("utf-8", "surrogatepass")


def json_unescape(buf: bytes) -> bytes:
    """JSON and JavaScript string escapes (`\\u0041`, `\\x41`, `\\/`) decoded."""
    return _JSON_ESCAPE.sub(_json_char, buf)


def qp_decode(buf: bytes) -> bytes:
    """Quoted-printable (MIME parts): `=XX` decoded, soft line breaks removed."""
    return binascii.a2b_qp(buf)


DECODERS = {"percent": percent_decode, "json": json_unescape, "qp": qp_decode}


def _run(buf: bytes, start: int, end: int, alphabet: frozenset[int]) -> tuple[int, int]:
    lo, hi = start, end
    floor, ceil = max(0, start - MAX_RUN), min(len(buf), end + MAX_RUN)
    while lo > floor and buf[lo - 1] in alphabet:
        lo -= 1
    while hi < ceil and buf[hi] in alphabet:
        hi += 1
    return lo, hi


def _base64_views(run: bytes) -> list[bytes]:
    # The run may start mid-stream, after a prefix we cannot see: try each alignment.
    run = run.translate(_TO_STD)
    out = []
    for k in range(4):
        part = run[k:]
        if len(part) % 4 == 1:  # a lone last character carries no whole byte
            part = part[:-1]
        if part:
            # Padding is not in the run's alphabet: restore it so the last bytes decode.
            out.append(base64.b64decode(part + b"=" * (-len(part) % 4), validate=False))
    return out


def _hex_views(run: bytes) -> list[bytes]:
    out = []
    for k in range(2):
        part = run[k:]
        out.append(binascii.unhexlify(part[: len(part) - len(part) % 2]))
    return out


def run_views(kind: str, buf: bytes, start: int, end: int) -> tuple[int, int, list[bytes]]:
    """The base64 (or base64url) or hex run around [start, end): its span and its
    decodings at every alignment."""
    lo, hi = _run(buf, start, end, _B64 if kind == "base64" else _HEXCH)
    run = buf[lo:hi]
    return lo, hi, _base64_views(run) if kind == "base64" else _hex_views(run)


def _expand(anchor: bytes) -> list[bytes]:
    """A literal anchor with `[abc]` classes spelled out: `gh[po]_` -> gh_p_, gh_o_."""
    m = re.search(rb"\[([^\]]+)\]", anchor)
    if m is None:
        return [anchor]
    head, tail = anchor[: m.start()], anchor[m.end() :]
    return [w for c in m.group(1) for w in _expand(head + bytes((c,)) + tail)]


def b64_forms(value: bytes, min_len: int) -> set[bytes]:
    """Base64 characters that depend only on `value`, at each of its three alignments."""
    forms: set[bytes] = set()
    for k in range(3):
        enc = base64.b64encode(b"\0" * k + value).rstrip(b"=")
        head = (0, 2, 3)[k]
        tail = 1 if (k + len(value)) % 3 else 0
        core = enc[head : len(enc) - tail]
        if len(core) >= min_len:
            forms.add(core)
            forms.add(core.replace(b"+", b"-").replace(b"/", b"_"))
    return forms


@dataclass(frozen=True)
class EncodedAnchor:
    """A built-in token prefix as it looks inside base64 or hex: `kind` names the decoder."""

    kind: str
    needle: bytes
    caseless: bool


def encoded_anchors(anchors: Iterable[bytes]) -> list[EncodedAnchor]:
    """Base64 and hex forms of literal anchors (`ghp_`, `AKIA`, `-----BEGIN `...).

    Forms shorter than 4 characters would turn up by chance in every image upload,
    so a short prefix is found in base64 only at the alignments where it is long
    enough; its hex form is always long enough.
    """
    out: dict[bytes, EncodedAnchor] = {}
    for anchor in anchors:
        for literal in _expand(anchor):
            for form in b64_forms(literal, 4):
                out.setdefault(form, EncodedAnchor("base64", form, False))
            hexed = binascii.hexlify(literal)
            out.setdefault(hexed, EncodedAnchor("hex", hexed, True))
    return list(out.values())


def windows(positions: Iterable[tuple[int, int]], size: int, width: int) -> list[tuple[int, int]]:
    """Merged [lo, hi) spans reaching `width` either side of each (start, end)."""
    spans: list[tuple[int, int]] = []
    for s, e in sorted(positions):
        lo, hi = max(0, s - width), min(size, e + width)
        if spans and lo <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], hi))
        else:
            spans.append((lo, hi))
    return spans
