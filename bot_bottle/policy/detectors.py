"""The built-in credential-format detectors: literal anchors, the regex tried where an
anchor matches, and the check that confirms a candidate (entropy, JWT header, doc
examples). `dlp.Scanner` finds the anchors in one pass and runs these only there.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

ALNUM = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_DOC_EXAMPLES = frozenset(
    {b"AKIAIOSFODNN7EXAMPLE", b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
)  # AWS's own documentation values: everywhere in docs and tests, never live.
_PLACEHOLDER_RE = re.compile(
    rb"example|xxxx|\*\*\*\*|changeme|change_me|dummy|placeholder|redacted|your[_-]", re.I
)
# Python's bytes `\s`, spelled out for Hyperscan, whose `\s` differs.
_WS = rb"[\t\n\v\f\r ]"
_ASSIGN = rb"[\"']?\s*(?::=|=>|[:=])\s*[\"'`]?(?P<v>[^\s\"'`,;&<>(){}\[\]$\\]{12,200})(?=[\s\"'`,;&\\]|\Z)"


Hit = tuple[str, int, int]
Verifier = Callable[[bytes, "re.Match[bytes]"], Hit | None]


@dataclass(frozen=True)
class Detector:
    """A built-in detector: its anchors, the regex matched where one starts, the check.

    Every match of `regex` starts where one of `anchors` (Hyperscan expressions)
    matches, so the regex is tried only there. `caseless` detectors match keywords
    in any letter case. `verify` confirms a candidate and returns (detector name,
    start, end) of the secret.
    """

    anchors: tuple[bytes, ...]
    regex: re.Pattern[bytes]
    caseless: bool
    verify: Verifier


def _glued(buf: bytes, start: int) -> bool:
    # A token glued to preceding alphanumerics is the middle of some longer blob
    # (base64, a hash), not a credential someone pasted.
    return start > 0 and buf[start - 1] in ALNUM


def _token(name: str) -> Verifier:
    def verify(buf: bytes, m: re.Match[bytes]) -> Hit | None:
        s, e = m.span()
        if _glued(buf, s) or buf[s:e] in _DOC_EXAMPLES:
            return None
        return name, s, e

    return verify


def _has_digit(v: bytes) -> bool:
    return any(48 <= c <= 57 for c in v)


def _entropy(v: bytes) -> float:
    n = len(v)
    return -sum(c / n * math.log2(c / n) for c in Counter(v).values())


def _random_looking(v: bytes) -> bool:
    """Letters and digits mixed with near-maximal Shannon entropy for the length."""
    if not _has_digit(v) or not any(c in ALNUM and c > 57 for c in v):
        return False
    if _PLACEHOLDER_RE.search(v):
        return False
    return _entropy(v) >= min(3.5, 0.85 * math.log2(len(v)))


def _slack(buf: bytes, m: re.Match[bytes]) -> Hit | None:
    s, e = m.span()
    if _glued(buf, s) or not _has_digit(m.group()[5:]):
        return None
    return "slack-token", s, e


def _named(names: Mapping[str, str]) -> Verifier:
    """Verifier for a pass whose alternatives are named groups after one shared anchor."""

    def verify(buf: bytes, m: re.Match[bytes]) -> Hit | None:
        s, e = m.span()
        if _glued(buf, s) or buf[s:e] in _DOC_EXAMPLES or m.lastgroup is None:
            return None
        return names[m.lastgroup], s, e

    return verify


def _k(buf: bytes, m: re.Match[bytes]) -> Hit | None:
    s, e = m.span()
    if _glued(buf, s):
        return None
    if m.lastgroup == "stripe":
        return "stripe-key", s, e
    body = m.group()[3:]
    if body.startswith(b"ant-"):
        return ("anthropic-key", s, e) if len(body) >= 36 else None
    for prefix in (b"proj-", b"svcacct-", b"admin-"):
        body = body.removeprefix(prefix)
    # "sk-" also starts CSS classes and slugs; a key body is random-looking.
    return ("openai-key", s, e) if _random_looking(body) else None


def _jwt(buf: bytes, m: re.Match[bytes]) -> Hit | None:
    s, e = m.span()
    header = m.group().split(b".", 1)[0]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header + b"=" * (-len(header) % 4)))
    except (ValueError, binascii.Error):
        return None
    if _glued(buf, s) or not isinstance(decoded, dict) or "alg" not in decoded:
        return None
    return "jwt", s, e


def _assignment(buf: bytes, m: re.Match[bytes]) -> Hit | None:
    s, e = m.span("v")
    return ("high-entropy-assignment", s, e) if _random_looking(buf[s:e]) else None


def _secret(buf: bytes, m: re.Match[bytes]) -> Hit | None:
    if m.group("aws") is None:
        return _assignment(buf, m)
    s, e = m.span("aws")
    v = buf[s:e]
    return ("aws-secret-key", s, e) if v not in _DOC_EXAMPLES and _has_digit(v) else None


def _private_key(buf: bytes, m: re.Match[bytes]) -> Hit | None:
    return "private-key", m.start(), m.end()


def _d(anchors: tuple[bytes, ...], pattern: bytes, verify: Verifier) -> Detector:
    return Detector(anchors, re.compile(pattern), False, verify)


def _kw(keyword: bytes, pattern: bytes, verify: Verifier) -> Detector:
    """A keyword-assignment detector: anchored on the keyword, any case, then `=` or `:`.

    Requiring the assignment in the anchor keeps prose and identifiers that merely
    mention "token" or "secret" from becoming candidates.
    """
    anchor = keyword + rb"[\"']?" + _WS + rb"*[:=]"
    return Detector((anchor,), re.compile(pattern, re.IGNORECASE), True, verify)


BUILTIN: tuple[Detector, ...] = (
    _d(
        (b"AKIA", b"ASIA", b"AIza"),
        rb"A(?:(?P<aws>(?:KIA|SIA)[A-Z0-9]{16}(?![A-Za-z0-9]))"
        rb"|(?P<google>Iza[A-Za-z0-9_\-]{35}(?![A-Za-z0-9_\-])))",
        _named({"aws": "aws-access-key", "google": "google-api-key"}),
    ),
    _d(
        (rb"gh[pousr]_", b"github_pat_", b"glpat-"),
        rb"g(?:(?P<github>h[pousr]_[A-Za-z0-9]{36,255}(?![A-Za-z0-9])"
        rb"|ithub_pat_[A-Za-z0-9_]{40,255})|(?P<gitlab>lpat-[A-Za-z0-9_\-]{20,}))",
        _named({"github": "github-token", "gitlab": "gitlab-token"}),
    ),
    _d(
        (rb"[sr]k_live_", b"sk-"),
        rb"(?P<stripe>[sr]k_live_[A-Za-z0-9]{20,})|(?P<sk>sk-[A-Za-z0-9_\-]{20,})",
        _k,
    ),
    _d((rb"xox[abprs]-",), rb"xox[abprs]-[A-Za-z0-9\-]{10,}", _slack),
    _d(
        (b"-----BEGIN ",),
        # The base64 body is required: PEM parsers and docs contain the bare header.
        rb"-----BEGIN [A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----"
        rb"(?:[A-Za-z0-9+/=\s\\:,\-]{64,16000}?-----END [A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----"
        rb"|[A-Za-z0-9+/=\s\\]{64,})",
        _private_key,
    ),
    _d((b"eyJ",), rb"eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{16,}", _jwt),
    _kw(
        rb"secret(?:_?access_?key|_?key)?",
        rb"secret(?:_?access_?key[\"']?\s*[:=]\s*[\"']?(?P<aws>[a-z0-9/+]{40})(?![a-z0-9/+=])"
        rb"|(?:_?key)?" + _ASSIGN + rb")",
        _secret,
    ),
    *(_kw(kw, kw + _ASSIGN, _assignment) for kw in (rb"passw(?:or)?d", rb"token", rb"api_?key")),
)
