"""Secret detectors: one library for egress DLP and the git gate's commit scanner.

A `Scanner` finds known values (sidecar-held tokens, protected host env values,
canaries) in their common encodings, and well-known credential formats. It
reports a fingerprint of what it found, never the secret itself, so findings are
safe to log and to put in a 403 body.

Speed comes from anchoring: every built-in detector starts with a literal, and one
Hyperscan pass over the input finds all of those anchors and every encoded form
of every known value at once. The precise checks (the detector's regex, entropy,
JWT header decoding) then run only at those candidate offsets.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

# Why a C automaton: the egress sidecar scans every request body before it is
# forwarded, so the scan is on the upload path and must cost a fraction of what
# mitmproxy itself spends per MiB (~13 ms). One `re`/`bytes.find` pass per anchor
# and per encoded value (the former design) ran at ~110 MB/s; pure-Python
# multi-pattern search is slower still, and pyahocorasick (~80 MB/s) and RE2
# (~600 MB/s, a byte-at-a-time DFA) were measured too. Hyperscan matches a set of
# literals and small regexes in one SIMD pass at a few GB/s, with case-insensitive
# literals and start offsets built in; it has wheels for Linux and macOS.
import hyperscan

from bot_bottle.policy.detectors import ALNUM, BUILTIN, Detector

# Values shorter than this are ignored: short strings ("admin", "1234") occur in
# ordinary traffic, so matching them would block legitimate requests, and a 48-bit
# fingerprint of a short value could be brute-forced back out of the audit log.
MIN_EXACT_LEN = 8


@dataclass(frozen=True)
class Finding:
    """One secret found: which detector, a log-safe fingerprint, and where (in the input's units)."""

    detector: str
    fingerprint: str
    start: int
    end: int


def fingerprint(secret: bytes) -> str:
    """First 12 hex digits of sha256: enough to correlate findings, not to recover a secret."""
    return hashlib.sha256(secret).hexdigest()[:12]


def _b64_cores(value: bytes) -> set[bytes]:
    """Base64 substrings that appear wherever `value` is embedded in a base64 stream.

    The value can start at any of three byte alignments (`user:token` in a Basic
    header shifts it), so each alignment yields the characters that depend only on
    the value; the mixed characters at either end are dropped.
    """
    cores: set[bytes] = set()
    for k in range(3):
        enc = base64.b64encode(b"\0" * k + value).rstrip(b"=")
        head = (0, 2, 3)[k]
        tail = 1 if (k + len(value)) % 3 else 0
        core = enc[head : len(enc) - tail]
        if len(core) >= MIN_EXACT_LEN:
            cores.add(core)
            cores.add(core.replace(b"+", b"-").replace(b"/", b"_"))
    return cores


@dataclass(frozen=True)
class _Exact:
    """One searchable form of a known value; `caseless` forms are matched in any letter case."""

    detector: str
    needle: bytes
    caseless: bool
    fingerprint: str


def _exact_forms(detector: str, value: str) -> list[_Exact]:
    raw = value.encode("utf-8", "surrogatepass")
    fp = fingerprint(raw)
    plain = {raw, raw.replace(b"/", b"\\/")} | _b64_cores(raw)
    # Percent-escape hex may come in either case, so these are matched in any case.
    pct = {quote(value, safe="").encode().lower(), quote_plus(value, safe="").encode().lower()}
    forms = [_Exact(detector, n, False, fp) for n in sorted(plain)]
    forms += [_Exact(detector, n, True, fp) for n in sorted(pct - {raw.lower()})]
    return forms


def _literal(needle: bytes) -> bytes:
    """`needle` as a Hyperscan expression: letters and digits as is, every other byte as `\\xHH`."""
    return b"".join(bytes((c,)) if c in ALNUM else b"\\x%02x" % c for c in needle)


_Target = _Exact | Detector
_Candidate = tuple[int, _Target]  # (start offset, what may start there)


class _Anchors:
    """One compiled Hyperscan database: every anchor of every target, found in one pass."""

    def __init__(self, targets: Sequence[_Target]) -> None:
        exprs: list[bytes] = []
        flags: list[int] = []
        ids: list[_Target] = []
        for t in targets:
            if isinstance(t, _Exact):
                pairs = [(_literal(t.needle), t.caseless)]
            else:
                pairs = [(a, t.caseless) for a in t.anchors]
            for expr, caseless in pairs:
                exprs.append(expr)
                flags.append(
                    hyperscan.HS_FLAG_SOM_LEFTMOST | (hyperscan.HS_FLAG_CASELESS if caseless else 0)
                )
                ids.append(t)
        self._targets = tuple(ids)
        self._db: hyperscan.Database | None = None
        if exprs:
            self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            self._db.compile(
                expressions=exprs, ids=list(range(len(exprs))), elements=len(exprs), flags=flags
            )

    def find(self, buf: bytes, *, stop_at_exact: bool) -> list[_Candidate]:
        """Candidates in order of start offset; stops early at a known value if asked."""
        found: list[_Candidate] = []
        if self._db is None or not buf:
            return found
        targets = self._targets

        def on_match(i: int, start: int, end: int, flags: int, ctx: object) -> bool:
            target = targets[i]
            found.append((start, target))
            return stop_at_exact and isinstance(target, _Exact)

        # A callback returning True ends the scan by raising ScanTerminated.
        with contextlib.suppress(hyperscan.ScanTerminated):
            self._db.scan(buf, match_event_handler=on_match)
        found.sort(key=lambda c: c[0])
        return found


class Scanner:
    """Finds secrets in bytes or text. Built once per policy; `scan`/`first` are pure."""

    def __init__(
        self,
        *,
        exact: Mapping[str, str] = {},
        canaries: Sequence[str] = (),
        patterns: Sequence[str] = (),
        builtin: bool = True,
    ) -> None:
        values = [(label, v) for label, v in exact.items()] + [("canary", c) for c in canaries]
        exact_forms = [
            form
            for label, v in values
            if isinstance(v, str) and len(v) >= MIN_EXACT_LEN
            for form in _exact_forms(label, v)
        ]
        self._anchors = _Anchors([*exact_forms, *(BUILTIN if builtin else ())])
        self._custom: tuple[tuple[str, re.Pattern[bytes]], ...] = tuple(
            (f"custom:{i}", re.compile(p.encode("utf-8"))) for i, p in enumerate(patterns)
        )

    def scan(self, data: bytes | str) -> list[Finding]:
        """Every finding, ordered by position."""
        buf = _as_bytes(data)
        found = sorted(set(self._search(buf, stop_at_first=False)), key=lambda f: (f.start, f.end))
        return [_to_text_offsets(data, buf, f) for f in found] if isinstance(data, str) else found

    def first(self, data: bytes | str) -> Finding | None:
        """Some finding, or None: stops at the first hit (known values are checked first)."""
        buf = _as_bytes(data)
        for f in self._search(buf, stop_at_first=True):
            return _to_text_offsets(data, buf, f) if isinstance(data, str) else f
        return None

    def _search(self, buf: bytes, *, stop_at_first: bool) -> list[Finding]:
        out: list[Finding] = []
        candidates = self._anchors.find(buf, stop_at_exact=stop_at_first)
        if stop_at_first:
            # A known value is the more precise report, so it wins wherever it is.
            exact = [(s, t) for s, t in candidates if isinstance(t, _Exact)]
            if exact:
                s, ex = exact[0]
                return [Finding(ex.detector, ex.fingerprint, s, s + len(ex.needle))]
        for start, target in candidates:
            if isinstance(target, _Exact):
                out.append(
                    Finding(target.detector, target.fingerprint, start, start + len(target.needle))
                )
                continue
            m = target.regex.match(buf, start)
            hit = target.verify(buf, m) if m is not None else None
            if hit is not None:
                name, s, e = hit
                out.append(Finding(name, fingerprint(buf[s:e]), s, e))
                if stop_at_first:
                    return out
        for name, rx in self._custom:
            for m in rx.finditer(buf):
                if m.end() > m.start():  # an empty match names no secret
                    out.append(Finding(name, fingerprint(m.group()), m.start(), m.end()))
                    if stop_at_first:
                        return out
        return out


def _as_bytes(data: bytes | str) -> bytes:
    return data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)


def _to_text_offsets(text: str, buf: bytes, f: Finding) -> Finding:
    if len(buf) == len(text):  # ASCII: byte and character offsets agree
        return f

    def char_at(i: int) -> int:
        return len(buf[:i].decode("utf-8", "ignore"))

    return Finding(f.detector, f.fingerprint, char_at(f.start), char_at(f.end))
